import type { Db } from '../storage/database.js';

/** Sign-ins sent to an external provider and not back yet (external-signin.schema.ts). */

export interface PendingSignin {
  stateHash: string;
  organizationId: string;
  providerId: string;
  browserHash: string;
  nonce: string;
  codeVerifier: string;
  returnTo: string;
}

export async function insertPendingSignin(db: Db, pending: PendingSignin, lifetimeSeconds: number): Promise<void> {
  // Abandoned sign-ins are dropped as new ones start (the expiry index keeps this cheap).
  await db.deleteFrom('external_signins').where('expires_at', '<', new Date()).execute();
  await db
    .insertInto('external_signins')
    .values({
      state_hash: pending.stateHash,
      organization_id: pending.organizationId,
      provider_id: pending.providerId,
      browser_hash: pending.browserHash,
      nonce: pending.nonce,
      code_verifier: pending.codeVerifier,
      return_to: pending.returnTo,
      expires_at: new Date(Date.now() + lifetimeSeconds * 1000),
    })
    .execute();
}

/** Takes the pending sign-in of a state, once: the row is deleted by the one statement that reads it. */
export async function takePendingSignin(db: Db, stateHash: string): Promise<PendingSignin | undefined> {
  const row = await db.deleteFrom('external_signins').where('state_hash', '=', stateHash).returningAll().executeTakeFirst();
  if (!row || row.expires_at.getTime() <= Date.now()) return undefined;
  return {
    stateHash: row.state_hash,
    organizationId: row.organization_id,
    providerId: row.provider_id,
    browserHash: row.browser_hash,
    nonce: row.nonce,
    codeVerifier: row.code_verifier,
    returnTo: row.return_to,
  };
}
