import { type AuditSource, auditTarget } from '../audit/audit.repo.js';
import { HttpProblem } from '../http/problem.js';
import { generateToken, sha256 } from '../security/tokens.js';
import type { Db } from '../storage/database.js';
import type { Invitation, Role, User } from '../storage/schema.js';
import { createMember, saveMember } from './accounts.js';
import {
  InvitationPendingError,
  type InvitationWithOrganization,
  answerInvitation,
  findInvitationByTokenHash,
  insertInvitation,
} from './invitations.repo.js';
import { findMember, findMemberByEmail, findUserByEmail, normalizeEmail } from './users.repo.js';

/**
 * Adding a person to an organization is an invitation they accept (issue 11). The organization
 * gets an answer that is the same whether or not the email has an account, and sees nothing of the
 * account until its owner accepts. The token (`sc_inv_` + 256 random bits) is stored as SHA-256 and
 * shown once; it rides in the query string of the accept link, because access logs keep paths but
 * never query values.
 */

export const INVITATION_TOKEN_PREFIX = 'sc_inv_';
export const INVITATION_LIFETIME_SECONDS = 14 * 24 * 60 * 60;

/** The page where the invited person answers (absolute with the public URL prefixed). */
export const invitationPath = (token: string): string => `/invitations?token=${encodeURIComponent(token)}`;

export interface InviteInput {
  email: string;
  role: Role;
  name: string | null;
  /** The person behind the credential, null for an application without a user. */
  invitedBy: string | null;
}

export async function invite(
  db: Db,
  organizationId: string,
  input: InviteInput,
  source: AuditSource,
): Promise<{ invitation: Invitation; token: string }> {
  const email = normalizeEmail(input.email);
  // Members of this organization are already visible to the caller (GET /v1/users): saying so reveals nothing.
  if (await findMemberByEmail(db, organizationId, email))
    throw new HttpProblem({ status: 409, detail: 'This person is already a member of the organization.' });
  const token = generateToken(INVITATION_TOKEN_PREFIX);
  try {
    const invitation = await db.transaction().execute(async (tx) => {
      const invitation = await insertInvitation(tx, organizationId, {
        email,
        name: input.name,
        role: input.role,
        tokenHash: sha256(token),
        invitedBy: input.invitedBy,
        lifetimeSeconds: INVITATION_LIFETIME_SECONDS,
      });
      await auditInvitation(tx, source, 'invitation.created', invitation);
      return invitation;
    });
    return { invitation, token };
  } catch (error) {
    if (error instanceof InvitationPendingError) {
      throw new HttpProblem({
        status: 409,
        detail:
          'This email already has a pending invitation to the organization; revoke it (DELETE /v1/invitations/{id}) to send a new one.',
      });
    }
    throw error;
  }
}

/** The invitation a link names, in whatever state (unknown tokens and other strings: undefined). */
export async function findInvitationByToken(db: Db, token: string): Promise<InvitationWithOrganization | undefined> {
  if (!token.startsWith(INVITATION_TOKEN_PREFIX) || token.length > 100) return undefined;
  return findInvitationByTokenHash(db, sha256(token));
}

export type Answer = 'accept' | 'decline';

/** `gone`: no longer pending (answered elsewhere, revoked or expired meanwhile). */
export type AnswerOutcome = 'accepted' | 'declined' | 'gone' | 'wrong_account';

/** Records an invitation's change, in its transaction; the token is never recorded. */
export const auditInvitation = auditTarget('invitation', (invitation: Invitation) => ({
  organizationId: invitation.organization_id,
  id: invitation.id,
  details: { email: invitation.email, role: invitation.role },
}));

/**
 * Only the owner of the invited email answers; accepting adds the membership with the offered role
 * (audited as theirs, from `sourceAddress`).
 */
export async function answerAsUser(
  db: Db,
  invitation: Invitation,
  user: User,
  answer: Answer,
  sourceAddress: string | null,
): Promise<AnswerOutcome> {
  if (normalizeEmail(user.email) !== invitation.email) return 'wrong_account';
  if (answer === 'decline') return (await answerInvitation(db, invitation.id, { accepted: false })) ? 'declined' : 'gone';
  return db.transaction().execute(async (tx) => {
    if (!(await answerInvitation(tx, invitation.id, { accepted: true, userId: user.id }))) return 'gone';
    // Someone who became a member meanwhile (the CLI, provisioning) keeps the role they have.
    const member = await findMember(tx, invitation.organization_id, user.id);
    if (!member) await saveMember(tx, invitation.organization_id, { email: user.email, role: invitation.role });
    await auditInvitation(tx, { actor: { kind: 'user', id: user.id }, sourceAddress }, 'invitation.accepted', invitation, {
      user_id: user.id,
      ...(member && { kept_role: member.role }),
    });
    return 'accepted';
  });
}

/**
 * Declining without signing in, with the link as the proof, is for an email without an account;
 * an account's owner signs in to answer (`sign_in`).
 */
export async function declineWithoutAccount(db: Db, invitation: Invitation): Promise<'declined' | 'gone' | 'sign_in'> {
  if (await findUserByEmail(db, invitation.email)) return 'sign_in';
  return (await answerInvitation(db, invitation.id, { accepted: false })) ? 'declined' : 'gone';
}

export type NewAccountOutcome = { kind: 'accepted'; user: User } | { kind: 'account_exists' } | { kind: 'gone' };

class NoLongerPending extends Error {}

/**
 * Accepts by creating the invited email's account (with the name and password its owner chose) and
 * its membership, in one transaction. An email that has an account meanwhile is never touched.
 */
export async function acceptWithNewAccount(
  db: Db,
  invitation: Invitation,
  account: { name: string | null; password: string },
  sourceAddress: string | null,
): Promise<NewAccountOutcome> {
  try {
    return await db.transaction().execute(async (tx): Promise<NewAccountOutcome> => {
      const user = await createMember(tx, invitation.organization_id, { email: invitation.email, role: invitation.role, ...account });
      if (!user) return { kind: 'account_exists' };
      if (!(await answerInvitation(tx, invitation.id, { accepted: true, userId: user.id }))) throw new NoLongerPending();
      await auditInvitation(tx, { actor: { kind: 'user', id: user.id }, sourceAddress }, 'invitation.accepted', invitation, {
        user_id: user.id,
        new_account: true,
      });
      return { kind: 'accepted', user };
    });
  } catch (error) {
    if (error instanceof NoLongerPending) return { kind: 'gone' };
    throw error;
  }
}
