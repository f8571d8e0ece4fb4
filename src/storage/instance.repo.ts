import { randomBytes } from 'node:crypto';
import type { Db } from './database.js';

/**
 * Installation-wide values shared by every node on the same database. Created on first use with
 * insert-or-ignore, so concurrent nodes agree on one value.
 */
async function getOrCreateSetting(db: Db, key: string, create: () => string): Promise<string> {
  await db
    .insertInto('instance_settings')
    .values({ key, value: create() })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
  const row = await db.selectFrom('instance_settings').select('value').where('key', '=', key).executeTakeFirstOrThrow();
  return row.value;
}

/** Random salt for deterministic secret digests (see security/passwords.ts lookupDigest). */
export async function installationSalt(db: Db): Promise<Buffer> {
  return Buffer.from(await getOrCreateSetting(db, 'lookup_salt', () => randomBytes(16).toString('base64')), 'base64');
}

/**
 * Key of the browser-session cookie signature and the CSRF token HMAC (web/session.ts).
 * Shared through the database so a session signed by one node is honoured by every other.
 */
export async function sessionSecret(db: Db): Promise<string> {
  return getOrCreateSetting(db, 'session_secret', () => randomBytes(32).toString('base64url'));
}

/**
 * Names this installation where it shares something with others: its keys in a Redis that several
 * installations (or test databases) may use.
 */
export async function installationId(db: Db): Promise<string> {
  return getOrCreateSetting(db, 'installation_id', () => randomBytes(12).toString('base64url'));
}
