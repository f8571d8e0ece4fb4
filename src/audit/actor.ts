import type { Principal } from '../auth/principal.js';
import type { Db } from '../storage/database.js';
import type { AuditAction } from './actions.js';
import { type AuditEntry, type AuditSource, recordAuditEvent } from './audit.repo.js';

/** Who made a change through the API, as the audit log records it. */
export function auditActor(principal: Principal): AuditEntry['actor'] {
  switch (principal.kind) {
    case 'user_token':
    case 'browser_session':
      return { kind: 'user', id: principal.userId };
    case 'api_key':
      return { kind: 'api_key', id: principal.revocationGroup };
    case 'app_token':
      return { kind: 'app', id: principal.token?.clientPk ?? null };
    case 'device':
      return { kind: 'device', id: principal.deviceId ?? null };
  }
}

/** The parts of an audit entry a caller of the API fixes: organization, actor and address. */
export function auditedBy(caller: {
  principal: Principal;
  organizationId: string;
  sourceAddress: string;
}): Pick<AuditEntry, 'organizationId' | 'actor' | 'sourceAddress'> {
  return { organizationId: caller.organizationId, actor: auditActor(caller.principal), sourceAddress: caller.sourceAddress };
}

/** Records a change an API caller made to `target`, in `tx`, the transaction of the change. */
export function recordCallerEvent(
  tx: Db,
  caller: Parameters<typeof auditedBy>[0],
  action: AuditAction,
  target: AuditEntry['target'],
  details: Record<string, unknown> = {},
): Promise<void> {
  return recordAuditEvent(tx, { ...auditedBy(caller), action, target, details });
}

/** A person signed in to a page (the login session), from their address. */
export function signedInUser(userId: string, sourceAddress: string): AuditSource {
  return { actor: { kind: 'user', id: userId }, sourceAddress };
}
