import type { Principal } from '../auth/principal.js';
import type { AuditEntry } from './audit.repo.js';

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
