import { hash, hashRaw, verify } from '@node-rs/argon2';

/**
 * argon2id with the OWASP-recommended minimum (19 MiB, t=2, p=1): about 20 ms per check on this
 * class of machine, which bounds password-grant throughput (bench/ measures it).
 */
export const ARGON2_PARAMS = {
  algorithm: 2, // Algorithm.Argon2id (a const enum, not importable under verbatimModuleSyntax)
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
} as const;

export function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2_PARAMS);
}

/** A hash made from a random string, checked when the user is unknown so timing does not tell. */
let decoyHash: Promise<string> | undefined;

export async function verifyPassword(storedHash: string | null | undefined, password: string): Promise<boolean> {
  if (!storedHash) {
    decoyHash ??= hashPassword(crypto.randomUUID());
    await verify(await decoyHash, password).catch(() => false);
    return false;
  }
  try {
    return await verify(storedHash, password);
  } catch {
    return false; // malformed stored hash: never a match, never a crash
  }
}

/**
 * Deterministic argon2id digest for secrets that must be found by value yet may be human-chosen
 * (Sensorberg's external_authentication_token): the installation's random salt makes a leaked
 * table as slow to attack as password hashes, while the same input always gives the same key.
 */
export async function lookupDigest(secret: string, installationSalt: Buffer): Promise<string> {
  const raw = await hashRaw(secret, { ...ARGON2_PARAMS, salt: installationSalt, outputLen: 32 });
  return raw.toString('base64url');
}
