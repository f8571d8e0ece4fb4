import { type RawBuilder, type SqlBool, sql } from 'kysely';
import { type Page, type PageRequest, type Sort, type SortField, keysetPage, paginate } from '../storage/keyset.js';
import { type Db, inTransaction } from '../storage/database.js';
import type { Invitation, Role } from '../storage/schema.js';
import { isUuid } from '../storage/sql.js';

/**
 * Invitations to join an organization (migration 0008). The organization's side (create, list,
 * revoke) is scoped by organization id like every repository; the invited person's side finds an
 * invitation by its token hash (the token is the credential) or by their own email.
 */

export const INVITATION_STATUSES = ['pending', 'accepted', 'declined', 'revoked', 'expired'] as const;
export type InvitationStatus = (typeof INVITATION_STATUSES)[number];

/** Not yet closed: neither accepted, declined, revoked, nor replaced after it expired. */
const isOpen = (row: Pick<Invitation, 'accepted_at' | 'declined_at' | 'revoked_at' | 'superseded_at'>): boolean =>
  row.accepted_at === null && row.declined_at === null && row.revoked_at === null && row.superseded_at === null;

export function invitationStatus(row: Invitation, now = new Date()): InvitationStatus {
  if (row.accepted_at) return 'accepted';
  if (row.declined_at) return 'declined';
  if (row.revoked_at) return 'revoked';
  return isOpen(row) && row.expires_at > now ? 'pending' : 'expired';
}

/** Columns qualified: these fragments also run in queries joined with organizations. */
const OPEN = sql<SqlBool>`(organization_invitations.accepted_at is null and organization_invitations.declined_at is null
  and organization_invitations.revoked_at is null and organization_invitations.superseded_at is null)`;

/** The SQL twin of invitationStatus(). */
const HAS_STATUS: Record<InvitationStatus, RawBuilder<SqlBool>> = {
  accepted: sql`(organization_invitations.accepted_at is not null)`,
  declined: sql`(organization_invitations.declined_at is not null)`,
  revoked: sql`(organization_invitations.revoked_at is not null)`,
  pending: sql`(${OPEN} and organization_invitations.expires_at > now())`,
  expired: sql`(organization_invitations.accepted_at is null and organization_invitations.declined_at is null
    and organization_invitations.revoked_at is null
    and (organization_invitations.superseded_at is not null or organization_invitations.expires_at <= now()))`,
};
const PENDING = HAS_STATUS.pending;

export const INVITATION_SORTS: Record<string, SortField> = {
  created_at: { column: 'organization_invitations.created_at', cast: 'timestamptz' },
  expires_at: { column: 'organization_invitations.expires_at', cast: 'timestamptz' },
  email: { column: 'organization_invitations.email', cast: 'text' },
};

export interface InvitationFields {
  email: string;
  name: string | null;
  role: Role;
  tokenHash: string;
  invitedBy: string | null;
  /** From the database's now(), like created_at. */
  lifetimeSeconds: number;
}

/** Thrown when the organization already has a pending invitation for that email. */
export class InvitationPendingError extends Error {}

/**
 * Records an invitation. An expired one to the same email is superseded in the same transaction
 * (it frees the one-open-invitation key); an unexpired one makes this an InvitationPendingError.
 */
export async function insertInvitation(db: Db, organizationId: string, fields: InvitationFields): Promise<Invitation> {
  try {
    return await inTransaction(db, async (tx) => {
      await tx
        .updateTable('organization_invitations')
        .set({ superseded_at: new Date() })
        .where('organization_id', '=', organizationId)
        .where('email', '=', fields.email)
        .where(OPEN)
        .where('expires_at', '<=', sql<Date>`now()`)
        .execute();
      return tx
        .insertInto('organization_invitations')
        .values({
          organization_id: organizationId,
          email: fields.email,
          name: fields.name,
          role: fields.role,
          token_hash: fields.tokenHash,
          invited_by: fields.invitedBy,
          expires_at: sql<Date>`now() + make_interval(secs => ${fields.lifetimeSeconds})`,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
    });
  } catch (error) {
    if ((error as { constraint?: string }).constraint === 'organization_invitations_open_key') throw new InvitationPendingError();
    throw error;
  }
}

export interface InvitationFilter {
  status?: InvitationStatus | undefined;
  email?: string | undefined;
}

export async function listInvitations(
  db: Db,
  organizationId: string,
  filter: InvitationFilter,
  sort: Sort,
  page: PageRequest,
): Promise<Page<Invitation>> {
  let query = db.selectFrom('organization_invitations').selectAll().where('organization_id', '=', organizationId);
  if (filter.status !== undefined) query = query.where(HAS_STATUS[filter.status]);
  if (filter.email !== undefined) query = query.where('email', '=', filter.email);
  const rows = await paginate(query, sort, 'organization_invitations.id', page).execute();
  return keysetPage(rows, sort, page);
}

export async function findInvitation(db: Db, organizationId: string, id: string): Promise<Invitation | undefined> {
  if (!isUuid(id)) return undefined;
  return db
    .selectFrom('organization_invitations')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .executeTakeFirst();
}

/** Revokes the invitation if it is still pending; undefined otherwise (missing, foreign or closed). */
export async function revokeInvitation(db: Db, organizationId: string, id: string): Promise<Invitation | undefined> {
  if (!isUuid(id)) return undefined;
  return db
    .updateTable('organization_invitations')
    .set({ revoked_at: new Date() })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .where(PENDING)
    .returningAll()
    .executeTakeFirst();
}

/** An invitation as the invited person sees it: with the organization's name. */
export type InvitationWithOrganization = Invitation & { organization_name: string };

function withOrganization(db: Db) {
  return db
    .selectFrom('organization_invitations')
    .innerJoin('organizations', 'organizations.id', 'organization_invitations.organization_id')
    .selectAll('organization_invitations')
    .select('organizations.name as organization_name');
}

/** By its token's hash, whatever its state (the page says why a link no longer works). */
export async function findInvitationByTokenHash(db: Db, tokenHash: string): Promise<InvitationWithOrganization | undefined> {
  return withOrganization(db).where('organization_invitations.token_hash', '=', tokenHash).executeTakeFirst();
}

/** The pending invitations sent to an email, newest first. */
export async function listPendingInvitationsForEmail(db: Db, email: string): Promise<InvitationWithOrganization[]> {
  return withOrganization(db)
    .where('organization_invitations.email', '=', email)
    .where(PENDING)
    .orderBy('organization_invitations.created_at', 'desc')
    .execute();
}

/** One pending invitation sent to this email (the account page's answer names it by id). */
export async function findPendingInvitationForEmail(db: Db, id: string, email: string): Promise<InvitationWithOrganization | undefined> {
  if (!isUuid(id)) return undefined;
  return withOrganization(db)
    .where('organization_invitations.id', '=', id)
    .where('organization_invitations.email', '=', email)
    .where(PENDING)
    .executeTakeFirst();
}

/**
 * Closes a pending invitation with the person's answer; undefined when it is no longer pending (a
 * concurrent answer, a revocation or its expiry won). Only an acceptance records the account.
 */
export async function answerInvitation(
  db: Db,
  id: string,
  answer: { accepted: true; userId: string } | { accepted: false },
): Promise<Invitation | undefined> {
  const now = new Date();
  return db
    .updateTable('organization_invitations')
    .set(answer.accepted ? { accepted_at: now, user_id: answer.userId } : { declined_at: now })
    .where('id', '=', id)
    .where(PENDING)
    .returningAll()
    .executeTakeFirst();
}
