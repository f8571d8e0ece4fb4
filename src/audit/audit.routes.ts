import { Type } from 'typebox';
import type { ResourceType } from '../api/documents.js';
import { Nullable, Timestamp, iso } from '../api/kit.js';
import { resourceRoutes } from '../api/resource-routes.js';
import type { App, AppServices } from '../server/context.js';
import { ACTOR_KINDS, AUDIT_ACTIONS, AUDIT_TARGET_TYPES } from './actions.js';
import { AUDIT_SORTS, type AuditEvent, findAuditEvent, listAuditEvents } from './audit.repo.js';

/**
 * `/v1/audit-events`: the organization's audit log, read-only, newest first, for its admins. The
 * scope is `users:write`, the one canonical scope (SPEC §2) only owners and admins hold among
 * people: the log is about who holds which credential and role, which is theirs to oversee. No new
 * scope is invented for it.
 */

export const AuditEventResource: ResourceType<AuditEvent> = {
  type: 'audit-events',
  id: (row) => row.id,
  path: (row) => `/v1/audit-events/${row.id}`,
  attributes: (row) => ({
    at: iso(row.at),
    action: row.action,
    actor_kind: row.actor_kind,
    actor_id: row.actor_id,
    source_address: row.source_address,
    target_type: row.target_type,
    target_id: row.target_id,
    details: row.details,
  }),
};

const ACTIONS_DESCRIPTION = `One of: ${AUDIT_ACTIONS.map((a) => `\`${a}\``).join(', ')}.`;

const AuditEventJson = Type.Object({
  id: Type.String({ format: 'uuid' }),
  at: Timestamp('When the change was made (committed with it), to the millisecond.'),
  action: Type.Enum([...AUDIT_ACTIONS], { description: `\`<resource>.<verb>\`. ${ACTIONS_DESCRIPTION}` }),
  actor_kind: Type.Enum([...ACTOR_KINDS], {
    description:
      '`user` (a person, signed in or with a token), `api_key`, `app` (an OAuth application without a person), `device`, `system` (the server itself or its command line).',
  }),
  actor_id: Nullable(Type.String({ format: 'uuid', description: 'The user, API key, OAuth client or device; null for `system`.' })),
  source_address: Nullable(
    Type.String({
      description: 'The address the request came from (behind TRUST_PROXY, the forwarded one); null when no request caused it.',
    }),
  ),
  target_type: Type.String({ description: AUDIT_TARGET_TYPES.map((t) => `\`${t}\``).join(', ') }),
  target_id: Type.String({ format: 'uuid' }),
  details: Type.Record(Type.String(), Type.Unknown(), {
    description: 'What else is worth knowing (names, scopes, changed fields, a reason). Never a secret.',
  }),
  links: Type.Object({ self: Type.String({ format: 'uri' }) }),
});

const Id = (description: string) => Type.Optional(Type.String({ maxLength: 100, description }));

export function registerAuditRoutes(app: App, services: AppServices): void {
  const { db } = services;
  const events = resourceRoutes(app, services, {
    path: '/v1/audit-events',
    resource: AuditEventResource,
    schema: AuditEventJson,
    noun: 'audit event',
    tags: ['audit'],
    scopes: { read: ['users:write'], write: ['users:write'] },
  });

  events.list(
    {
      summary: "The organization's audit log, newest first (owners and admins: users:write)",
      sorts: AUDIT_SORTS,
      defaultSort: '-at',
      filters: {
        action: Type.Optional(
          Type.String({
            maxLength: 100,
            pattern: '^[a-z_]+(\\.[a-z_]*)?\\*?$',
            description: `An action (\`api_key.revoked\`), or every action of a resource with a prefix ending in \`.\` or \`*\` (\`api_key.\`). ${ACTIONS_DESCRIPTION}`,
          }),
        ),
        actor_kind: Type.Optional(Type.Enum([...ACTOR_KINDS])),
        actor_id: Id('Entries made by this user, API key, OAuth client or device.'),
        target_type: Type.Optional(Type.String({ maxLength: 100, pattern: '^[a-z_]+$' })),
        target_id: Id('Entries about this resource.'),
        from: Type.Optional(Timestamp('At or after this instant (RFC 3339).')),
        to: Type.Optional(Timestamp('Before this instant (RFC 3339).')),
      },
    },
    ({ organizationId, query, sort, page }) => listAuditEvents(db, organizationId, query, sort, page),
  );

  events.get({ summary: 'One entry of the audit log' }, ({ organizationId, id }) => findAuditEvent(db, organizationId, id));
}
