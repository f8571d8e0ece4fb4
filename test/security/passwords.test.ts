import { availableParallelism } from 'node:os';
import { hashRaw, verify } from '@node-rs/argon2';
import { describe, expect, it } from 'vitest';
import { argon2Threads } from '../../src/security/argon2-pool.js';
import { ARGON2_PARAMS, hashPassword, lookupDigest, verifyPassword } from '../../src/security/passwords.js';

describe('argon2id on its own thread pool', () => {
  it('hashes and verifies, and is interchangeable with the library called directly', async () => {
    const stored = await hashPassword('correct horse');
    expect(stored).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await verify(stored, 'correct horse')).toBe(true);
    expect(await verifyPassword(stored, 'correct horse')).toBe(true);
    expect(await verifyPassword(stored, 'wrong horse')).toBe(false);
  });

  it('answers false, never throws, for a missing or malformed stored hash', async () => {
    expect(await verifyPassword(null, 'x')).toBe(false);
    expect(await verifyPassword(undefined, 'x')).toBe(false);
    expect(await verifyPassword('not-a-hash', 'x')).toBe(false);
    expect(await verifyPassword('$argon2id$v=19$m=19456,t=2,p=1$broken', 'x')).toBe(false);
  });

  it('gives the same lookup digest as before the pool (stored digests stay valid)', async () => {
    const salt = Buffer.alloc(16, 7);
    const direct = (await hashRaw('sensorberg-token', { ...ARGON2_PARAMS, salt, outputLen: 32 })).toString('base64url');
    expect(await lookupDigest('sensorberg-token', salt)).toBe(direct);
  });

  it('runs at most one hashing thread per core, however many hashes are asked for at once', async () => {
    const stored = await hashPassword('p');
    const results = await Promise.all(Array.from({ length: 4 * availableParallelism() }, () => verifyPassword(stored, 'p')));
    expect(results.every(Boolean)).toBe(true);
    expect(argon2Threads()).toBeGreaterThan(0);
    expect(argon2Threads()).toBeLessThanOrEqual(availableParallelism());
  });
});
