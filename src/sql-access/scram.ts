import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

/**
 * The SCRAM-SHA-256 verifier of a password (RFC 5802, RFC 7677), in the form PostgreSQL stores
 * in pg_authid: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. Handed to
 * `ALTER ROLE … PASSWORD` instead of the password itself, so the password never reaches the
 * database server, its statement log or pg_stat_activity (what psql's \password does too).
 * The passwords given here are ASCII, for which SASLprep changes nothing.
 */
export function scramVerifier(password: string, iterations = 4096): string {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
