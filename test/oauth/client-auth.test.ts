import { describe, expect, it } from 'vitest';
import { AbuseGuard } from '../../src/abuse/guard.js';
import { abusePolicies } from '../../src/abuse/policies.js';
import { readEnvironment } from '../../src/config/env.js';
import { ClientAuthenticator, parseBasicAuthorization } from '../../src/oauth/client-auth.js';
import type { OAuthClient } from '../../src/oauth/oauth.schema.js';
import type { Db } from '../../src/storage/database.js';
import { MemoryCounterStore } from '../support/memory-counter-store.js';

const settings = { secretCacheTtlMs: 60_000 };
const guard = () => new AbuseGuard(new MemoryCounterStore(Date.now), abusePolicies(readEnvironment({})));

function fakeClient(): OAuthClient {
  return {
    id: 'pk-1',
    secret_hash: '$argon2id$hash-1',
    updated_at: new Date(1000),
    public: false,
    client_id: 'c',
  } as unknown as OAuthClient;
}

/** A stand-in for argon2id that counts calls and accepts one secret. */
function countingVerify(accepted: string, delayMs = 5) {
  const calls: string[] = [];
  const verify = async (hash: string | null, secret: string) => {
    calls.push(secret);
    await new Promise((r) => setTimeout(r, delayMs));
    return hash !== null && secret === accepted;
  };
  return { calls, verify };
}

describe('the verified-secret cache', () => {
  it('verifies with argon2id once, then answers repeat authentications from the cache', async () => {
    let now = 0;
    const { calls, verify } = countingVerify('right');
    const auth = new ClientAuthenticator(undefined as unknown as Db, settings, guard(), () => now, verify);
    const client = fakeClient();
    expect(await auth.verifySecret(client, 'right')).toBe(true);
    expect(await auth.verifySecret(client, 'right')).toBe(true);
    expect(calls).toEqual(['right']);
    // Failures are never cached: each wrong secret costs a verification.
    expect(await auth.verifySecret(client, 'wrong')).toBe(false);
    expect(await auth.verifySecret(client, 'wrong')).toBe(false);
    expect(calls).toEqual(['right', 'wrong', 'wrong']);
    // And a wrong secret does not evict the right one.
    expect(await auth.verifySecret(client, 'right')).toBe(true);
    expect(calls).toHaveLength(3);
    // Expiry of the entry.
    now += settings.secretCacheTtlMs + 1;
    expect(await auth.verifySecret(client, 'right')).toBe(true);
    expect(calls).toHaveLength(4);
  });

  it('misses as soon as the stored secret or the client row changes', async () => {
    const { calls, verify } = countingVerify('right');
    const auth = new ClientAuthenticator(undefined as unknown as Db, settings, guard(), Date.now, verify);
    await auth.verifySecret(fakeClient(), 'right');
    await auth.verifySecret({ ...fakeClient(), secret_hash: '$argon2id$hash-2' }, 'right');
    await auth.verifySecret({ ...fakeClient(), updated_at: new Date(2000) }, 'right');
    expect(calls).toHaveLength(3);
  });

  it('concurrent first authentications share one verification', async () => {
    const { calls, verify } = countingVerify('right', 30);
    const auth = new ClientAuthenticator(undefined as unknown as Db, settings, guard(), Date.now, verify);
    const results = await Promise.all(Array.from({ length: 10 }, () => auth.verifySecret(fakeClient(), 'right')));
    expect(results.every(Boolean)).toBe(true);
    expect(calls).toHaveLength(1);
  });

  it('a client without a stored secret never verifies', async () => {
    const { calls, verify } = countingVerify('right');
    const auth = new ClientAuthenticator(undefined as unknown as Db, settings, guard(), Date.now, verify);
    expect(await auth.verifySecret({ ...fakeClient(), secret_hash: null }, 'right')).toBe(false);
    expect(calls).toHaveLength(0);
  });
});

describe('HTTP Basic client credentials (RFC 6749 §2.3.1)', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');

  it('form-urldecodes the id and the secret, keeping the raw form as a fallback', () => {
    expect(parseBasicAuthorization(`Basic ${b64('my%3Aclient:p%40ss+word%25')}`)).toEqual({
      clientId: 'my:client',
      secret: 'p@ss word%',
      rawClientId: 'my%3Aclient',
      rawSecret: 'p%40ss+word%25',
    });
    // Invalid percent-encoding is taken literally.
    expect(parseBasicAuthorization(`Basic ${b64('id:100%')}`)?.secret).toBe('100%');
    // The secret may contain colons; the id is up to the first one.
    expect(parseBasicAuthorization(`basic ${b64('id:a:b')}`)?.secret).toBe('a:b');
  });

  it('ignores other schemes and rejects malformed Basic credentials with invalid_client', () => {
    expect(parseBasicAuthorization(undefined)).toBeUndefined();
    expect(parseBasicAuthorization('Bearer abc')).toBeUndefined();
    for (const bad of ['Basic', 'Basic !!!', `Basic ${b64('no-colon')}`, `Basic ${b64(':secret')}`]) {
      expect(() => parseBasicAuthorization(bad)).toThrowError(expect.objectContaining({ error: 'invalid_client', status: 401 }));
    }
  });
});
