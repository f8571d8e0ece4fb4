import { sql } from 'kysely';
import { type AuditEntry, recordAuditEvent } from '../../audit/audit.repo.js';
import type { Db } from '../../storage/database.js';
import { findGrantIds, revokeGrant } from '../tokens/tokens.repo.js';

/**
 * Remembered consents (`oauth_consents`): one row per (organization, user, client) holding every
 * scope the user has approved for that client. A request covered by it skips the consent page.
 * Revoking deletes it and ends every grant the client holds for that user.
 */

export async function findConsentScopes(db: Db, organizationId: string, userId: string, clientPk: string): Promise<string[] | undefined> {
  const row = await db
    .selectFrom('oauth_consents')
    .select('scopes')
    .where('organization_id', '=', organizationId)
    .where('user_id', '=', userId)
    .where('client_pk', '=', clientPk)
    .executeTakeFirst();
  return row?.scopes;
}

/** The application a consent is about, and where the person decided (their address). */
export interface ConsentContext {
  organizationId: string;
  userId: string;
  client: { pk: string; clientId: string };
  sourceAddress: string;
  /** Who acted, as the audit log records it: the person (the default), or the credential they used on the API. */
  actor?: AuditEntry['actor'];
}

/** A consent's entry in the audit log: the person is the actor, the application the target. */
function auditConsent(
  tx: Db,
  context: ConsentContext,
  action: 'consent.granted' | 'consent.revoked',
  details: Record<string, unknown>,
): Promise<void> {
  return recordAuditEvent(tx, {
    organizationId: context.organizationId,
    actor: context.actor ?? { kind: 'user', id: context.userId },
    sourceAddress: context.sourceAddress,
    action,
    target: { type: 'application', id: context.client.pk },
    details: { client_id: context.client.clientId, ...details },
  });
}

/**
 * Remembers an approval, adding its scopes to what was approved before (one statement, race-free),
 * and records it in the audit log (`via`: the consent page or the device page), in one transaction.
 */
export async function rememberConsent(
  db: Db,
  context: ConsentContext,
  scopes: readonly string[],
  via: 'authorization_code' | 'device_code',
): Promise<void> {
  await db.transaction().execute(async (tx) => {
    await tx
      .insertInto('oauth_consents')
      .values({ organization_id: context.organizationId, user_id: context.userId, client_pk: context.client.pk, scopes: [...scopes] })
      .onConflict((oc) =>
        oc.columns(['organization_id', 'user_id', 'client_pk']).doUpdateSet({
          scopes: sql<string[]>`array(select distinct s from unnest(oauth_consents.scopes || excluded.scopes) as s order by s)`,
          updated_at: sql<Date>`now()`,
        }),
      )
      .execute();
    await auditConsent(tx, context, 'consent.granted', { user_id: context.userId, scopes: [...scopes], via });
  });
}

export interface AuthorizedApplication {
  organizationId: string;
  organizationName: string;
  clientPk: string;
  clientId: string;
  name: string;
  privacyPolicyUrl: string | null;
  scopes: string[];
  createdAt: Date;
  updatedAt: Date;
}

/** Every application the user has approved, optionally within one organization, newest first. */
export async function listAuthorizedApplications(db: Db, userId: string, organizationId?: string): Promise<AuthorizedApplication[]> {
  let query = db
    .selectFrom('oauth_consents as k')
    .innerJoin('oauth_clients as c', 'c.id', 'k.client_pk')
    .innerJoin('organizations as o', 'o.id', 'k.organization_id')
    .select([
      'k.organization_id',
      'o.name as organization_name',
      'k.client_pk',
      'c.client_id',
      'c.name',
      'c.privacy_policy_url',
      'k.scopes',
      'k.created_at',
      'k.updated_at',
    ])
    .where('k.user_id', '=', userId);
  if (organizationId !== undefined) query = query.where('k.organization_id', '=', organizationId);
  const rows = await query.orderBy('k.updated_at', 'desc').orderBy('c.client_id').execute();
  return rows.map((r) => ({
    organizationId: r.organization_id,
    organizationName: r.organization_name,
    clientPk: r.client_pk,
    clientId: r.client_id,
    name: r.name,
    privacyPolicyUrl: r.privacy_policy_url,
    scopes: r.scopes,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }));
}

export interface RevokedAuthorization {
  /** Whether a remembered consent existed. */
  consentDeleted: boolean;
  /** Grants ended; the caller evicts each from the bearer cache. */
  grantIds: string[];
}

/**
 * Withdraws a user's authorization of a client in one organization: forgets the consent, ends
 * every live grant (and so every access and refresh token) the client holds for the user, and
 * voids codes and device approvals not yet redeemed. One transaction, with its audit entry when
 * there was something to withdraw.
 */
export async function revokeAuthorization(db: Db, context: ConsentContext): Promise<RevokedAuthorization> {
  const { organizationId, userId } = context;
  const clientPk = context.client.pk;
  return db.transaction().execute(async (tx) => {
    const deleted = await tx
      .deleteFrom('oauth_consents')
      .where('organization_id', '=', organizationId)
      .where('user_id', '=', userId)
      .where('client_pk', '=', clientPk)
      .returning('client_pk')
      .executeTakeFirst();
    // The token store owns grants and tokens: ask it, in this transaction.
    const grantIds = await findGrantIds(tx, organizationId, clientPk, userId);
    for (const grantId of grantIds) await revokeGrant(tx, grantId);
    await tx
      .deleteFrom('oauth_authorization_codes')
      .where('organization_id', '=', organizationId)
      .where('user_id', '=', userId)
      .where('client_pk', '=', clientPk)
      .where('used_at', 'is', null)
      .execute();
    await tx
      .updateTable('oauth_device_codes')
      .set({ status: 'denied', scopes: null, scope_display: null })
      .where('organization_id', '=', organizationId)
      .where('user_id', '=', userId)
      .where('client_pk', '=', clientPk)
      .where('status', '=', 'approved')
      .execute();
    const consentDeleted = deleted !== undefined;
    if (consentDeleted || grantIds.length > 0)
      await auditConsent(tx, context, 'consent.revoked', { user_id: userId, grants_revoked: grantIds.length });
    return { consentDeleted, grantIds };
  });
}
