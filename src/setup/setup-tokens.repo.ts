import type { Db } from '../storage/database.js';
import { generateToken, sha256 } from '../security/tokens.js';

/**
 * First-run setup links. Stored as hashes in the database (not in memory) so a link printed by
 * one node works on any node; issuing a new link retires the unused older ones.
 */
export async function issueSetupToken(db: Db): Promise<string> {
  const token = generateToken('sc_setup_', 24);
  await db.transaction().execute(async (tx) => {
    await tx.deleteFrom('setup_tokens').where('used_at', 'is', null).execute();
    await tx
      .insertInto('setup_tokens')
      .values({ token_hash: sha256(token) })
      .execute();
  });
  return token;
}

export async function isSetupTokenValid(db: Db, token: string): Promise<boolean> {
  const row = await db
    .selectFrom('setup_tokens')
    .select('token_hash')
    .where('token_hash', '=', sha256(token))
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return row !== undefined;
}

/** Spends the token; false when it was unknown or already used (a concurrent submit lost). */
export async function consumeSetupToken(db: Db, token: string): Promise<boolean> {
  const result = await db
    .updateTable('setup_tokens')
    .set({ used_at: new Date() })
    .where('token_hash', '=', sha256(token))
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}
