import { type Kysely, sql } from 'kysely';

/**
 * Browser sessions of the login, consent, device and account pages, held server-side so logout,
 * expiry and a password change end them on every node. Only the SHA-256 of the session id (256
 * random bits, in the signed cookie) is stored: a database leak yields no usable session.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('browser_sessions')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    // Absolute lifetime: fixed at sign-in, never extended by activity.
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute();
  // Ending every session of a user (password change, deactivation).
  await db.schema.createIndex('browser_sessions_user_idx').on('browser_sessions').column('user_id').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('browser_sessions').execute();
}
