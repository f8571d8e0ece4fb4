import { runArgon2 } from './argon2-pool.js';

/**
 * argon2id with the OWASP-recommended minimum (19 MiB, t=2, p=1): about 10 ms of CPU per check on
 * the bench host, which bounds password-grant throughput (bench/ measures it). Every hash runs on
 * the argon2 pool (argon2-pool.ts), one thread per core.
 */
export const ARGON2_PARAMS = {
  algorithm: 2, // Algorithm.Argon2id (a const enum, not importable under verbatimModuleSyntax)
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
} as const;

export function hashPassword(password: string): Promise<string> {
  return runArgon2({ op: 'hash', password, options: ARGON2_PARAMS });
}

/** A hash made from a random string, checked when the user is unknown so timing does not tell. */
let decoyHash: Promise<string> | undefined;

export async function verifyPassword(storedHash: string | null | undefined, password: string): Promise<boolean> {
  if (!storedHash) {
    decoyHash ??= hashPassword(crypto.randomUUID());
    await runArgon2({ op: 'verify', hash: await decoyHash, password });
    return false;
  }
  return runArgon2({ op: 'verify', hash: storedHash, password });
}

/**
 * Deterministic argon2id digest for secrets that must be found by value yet may be human-chosen
 * (Sensorberg's external_authentication_token): the installation's random salt makes a leaked
 * table as slow to attack as password hashes, while the same input always gives the same key.
 */
export async function lookupDigest(secret: string, installationSalt: Buffer): Promise<string> {
  const raw = await runArgon2<Uint8Array>({
    op: 'hashRaw',
    password: secret,
    options: { ...ARGON2_PARAMS, salt: installationSalt, outputLen: 32 },
  });
  return Buffer.from(raw).toString('base64url');
}
