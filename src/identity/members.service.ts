import type { AuditAction } from '../audit/actions.js';
import { recordCallerEvent } from '../audit/actor.js';
import type { BearerAuthenticator } from '../auth/bearer.js';
import type { Principal } from '../auth/principal.js';
import { HttpProblem } from '../http/problem.js';
import type { Db } from '../storage/database.js';
import type { Role } from '../storage/schema.js';
import { type MemberView, countActiveOwners, removeMember, setMemberDeactivated, setMemberRole } from './members.repo.js';
import { findMember } from './users.repo.js';

/**
 * Changes to a person's place in an organization, for `/v1/users` and the console's members page
 * alike: the owner rules, the audit entry and the end of the person's cached credentials, each in
 * the transaction `tx` of the change. Their credentials stop (or resume) granting access at once.
 */

/** Who changes a membership, as the audit log records it (an API caller or a console caller). */
export interface MemberAdmin {
  principal: Principal;
  organizationId: string;
  sourceAddress: string;
}

type Bearer = Pick<BearerAuthenticator, 'revoked'>;

const forbidden = (detail: string) => new HttpProblem({ status: 403, detail });
const conflict = (detail: string) => new HttpProblem({ status: 409, detail });

/** Only an owner may make someone an owner (by invitation too), or change or remove an owner. */
export async function checkOwnerChange(
  db: Db,
  principal: Principal,
  target: MemberView | undefined,
  newRole: Role | undefined,
): Promise<void> {
  if (newRole !== 'owner' && target?.role !== 'owner') return;
  const role = principal.userId ? (await findMember(db, principal.organizationId, principal.userId))?.role : undefined;
  if (role !== 'owner') throw forbidden('Only an owner can grant the owner role or change an owner.');
}

/** The organization must keep at least one active owner. */
async function checkKeepsOwner(db: Db, organizationId: string, target: MemberView): Promise<void> {
  if (target.role === 'owner' && target.deactivated_at === null && (await countActiveOwners(db, organizationId)) <= 1) {
    throw conflict('This is the last active owner of the organization; make someone else owner first.');
  }
}

const audit = (tx: Db, by: MemberAdmin, action: AuditAction, target: MemberView, details: Record<string, unknown> = {}) =>
  recordCallerEvent(tx, by, action, { type: 'user', id: target.id }, { email: target.email, ...details });

/** Gives `target` another role (nothing when it is the same). */
export async function changeMemberRole(tx: Db, bearer: Bearer, by: MemberAdmin, target: MemberView, role: Role): Promise<void> {
  if (role === target.role) return;
  await checkOwnerChange(tx, by.principal, target, role);
  if (target.role === 'owner') await checkKeepsOwner(tx, by.organizationId, target);
  await setMemberRole(tx, by.organizationId, target.id, role);
  await audit(tx, by, 'member.role_changed', target, { from: target.role, to: role });
  await bearer.revoked({ userId: target.id }, tx);
}

/** Deactivates or reactivates `target`, audited when it changes something. */
export async function setMemberActive(tx: Db, bearer: Bearer, by: MemberAdmin, target: MemberView, active: boolean): Promise<void> {
  if (!active) {
    await checkOwnerChange(tx, by.principal, target, undefined);
    await checkKeepsOwner(tx, by.organizationId, target);
  }
  await setMemberDeactivated(tx, by.organizationId, target.id, active ? null : (target.deactivated_at ?? new Date()));
  if (active !== (target.deactivated_at === null)) await audit(tx, by, active ? 'member.reactivated' : 'member.deactivated', target);
  await bearer.revoked({ userId: target.id }, tx);
}

/** Removes `target` from the organization (the account itself stays). */
export async function removeFromOrganization(tx: Db, bearer: Bearer, by: MemberAdmin, target: MemberView): Promise<void> {
  await checkOwnerChange(tx, by.principal, target, undefined);
  await checkKeepsOwner(tx, by.organizationId, target);
  // `target` was found, so a concurrent removal that came first is done already, not an error.
  if (await removeMember(tx, by.organizationId, target.id)) await audit(tx, by, 'member.removed', target, { role: target.role });
  await bearer.revoked({ userId: target.id }, tx);
}
