import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Generated credentials carry 256 random bits behind a readable prefix (`sc_at_`, `sk_live_`, …),
 * so a fast SHA-256 is a safe storage form: there is nothing to guess, and lookups stay O(1).
 */
export function generateToken(prefix: string, bytes = 32): string {
  return prefix + randomBytes(bytes).toString('base64url');
}

export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/** Constant-time string equality (length leaks, content does not). */
export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
