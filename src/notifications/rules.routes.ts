import { Type } from 'typebox';
import { guarded as dbGuarded } from '../api/db-errors.js';
import type { ResourceType } from '../api/documents.js';
import { Nullable, Timestamp, iso } from '../api/kit.js';
import { resourceRoutes } from '../api/resource-routes.js';
import { HttpProblem } from '../http/problem.js';
import { findThresholdsByIds } from '../alarms/thresholds.repo.js';
import { findGroupsByIds } from '../identity/group-admin.repo.js';
import { findMemberViewsByIds } from '../identity/members.repo.js';
import type { App, AppServices } from '../server/context.js';
import { RULE_SORTS, type RuleFields, type RuleView, deleteRule, findRule, insertRule, listRules, updateRule } from './rules.repo.js';

export const RuleResource: ResourceType<RuleView> = {
  type: 'notification-rules',
  id: (row) => row.id,
  path: (row) => `/v1/notification-rules/${row.id}`,
  attributes: (row) => ({
    name: row.name,
    min_severity: row.min_severity,
    repeat_every_seconds: row.repeat_every_seconds,
    escalate_after_seconds: row.escalate_after_seconds,
    enabled: row.enabled,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  }),
  relationships: {
    threshold: {
      type: 'alarm-thresholds',
      field: 'threshold_id',
      get: (row) => row.threshold_id,
      related: (row) => (row.threshold_id ? `/v1/alarm-thresholds/${row.threshold_id}` : undefined),
      include: { byIds: findThresholdsByIds },
    },
    group: {
      type: 'groups',
      field: 'group_id',
      get: (row) => row.group_id,
      related: (row) => (row.group_id ? `/v1/groups/${row.group_id}` : undefined),
      include: { byIds: findGroupsByIds },
    },
    users: { type: 'users', field: 'user_ids', many: true, get: (row) => row.user_ids, include: { byIds: findMemberViewsByIds } },
    groups: { type: 'groups', field: 'group_ids', many: true, get: (row) => row.group_ids, include: { byIds: findGroupsByIds } },
    escalation_users: {
      type: 'users',
      field: 'escalation_user_ids',
      many: true,
      get: (row) => row.escalation_user_ids,
      include: { byIds: findMemberViewsByIds },
    },
    escalation_groups: {
      type: 'groups',
      field: 'escalation_group_ids',
      many: true,
      get: (row) => row.escalation_group_ids,
      include: { byIds: findGroupsByIds },
    },
  },
};

const Uuid = Type.String({ format: 'uuid' });
const Ids = (description: string) => Type.Array(Uuid, { maxItems: 100, description });
const Severity = Type.Enum(['info', 'warning', 'critical']);
const RuleJson = Type.Object({
  id: Uuid,
  name: Nullable(Type.String()),
  threshold_id: Nullable(Uuid),
  group_id: Nullable(Uuid),
  user_ids: Type.Array(Uuid),
  group_ids: Type.Array(Uuid),
  min_severity: Severity,
  repeat_every_seconds: Nullable(Type.Integer()),
  escalate_after_seconds: Nullable(Type.Integer()),
  escalation_user_ids: Type.Array(Uuid),
  escalation_group_ids: Type.Array(Uuid),
  enabled: Type.Boolean(),
  created_at: Timestamp(),
  updated_at: Timestamp(),
  links: Type.Object({ self: Type.String({ format: 'uri' }) }),
});

const WEEK = 7 * 86_400;
const Editable = {
  name: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  threshold_id: Type.Optional(Nullable(Type.String({ format: 'uuid', description: 'Tell of the alarms of this threshold…' }))),
  group_id: Type.Optional(
    Nullable(Type.String({ format: 'uuid', description: '…or of any sensor of this group (exactly one of the two).' })),
  ),
  user_ids: Type.Optional(Ids('People told (members of the organization).')),
  group_ids: Type.Optional(Ids('Groups whose members are told.')),
  min_severity: Type.Optional(Severity),
  repeat_every_seconds: Type.Optional(
    Nullable(
      Type.Integer({ minimum: 1, maximum: WEEK, description: 'Tell again this often until the alarm is acknowledged; null: once.' }),
    ),
  ),
  escalate_after_seconds: Type.Optional(
    Nullable(
      Type.Integer({
        minimum: 1,
        maximum: WEEK,
        description: 'Tell the escalation recipients when the alarm is still not acknowledged this long after it triggered.',
      }),
    ),
  ),
  escalation_user_ids: Type.Optional(Ids('People told on escalation.')),
  escalation_group_ids: Type.Optional(Ids('Groups whose members are told on escalation.')),
  enabled: Type.Optional(Type.Boolean()),
};
const RuleCreate = Type.Object(Editable, { additionalProperties: false });
const RuleUpdate = Type.Partial(Type.Object(Editable), { additionalProperties: false });

const CONSTRAINTS = {
  foreignKey: {
    notification_rules_threshold_fk: {
      pointer: '/body/threshold_id',
      detail: 'threshold_id does not refer to an alarm threshold of this organization',
    },
    notification_rules_group_fk: { pointer: '/body/group_id', detail: 'group_id does not refer to a group of this organization' },
    notification_rule_users_member_fk: { pointer: '/body/user_ids', detail: 'a user id does not refer to a member of this organization' },
    notification_rule_groups_group_fk: { pointer: '/body/group_ids', detail: 'a group id does not refer to a group of this organization' },
  },
};

function checked(fields: RuleFields): RuleFields {
  const problem = (detail: string, pointer: string) => new HttpProblem({ status: 422, detail, errors: [{ pointer, detail }] });
  if ((fields.threshold_id === null) === (fields.group_id === null)) {
    throw problem('A rule targets exactly one of threshold_id and group_id.', '/body/threshold_id');
  }
  if (fields.user_ids.length === 0 && fields.group_ids.length === 0) {
    throw problem('A rule needs recipients: user_ids or group_ids.', '/body/user_ids');
  }
  const escalates = fields.escalation_user_ids.length > 0 || fields.escalation_group_ids.length > 0;
  if (escalates !== (fields.escalate_after_seconds !== null)) {
    throw problem(
      'escalate_after_seconds and escalation recipients (escalation_user_ids, escalation_group_ids) go together.',
      '/body/escalate_after_seconds',
    );
  }
  return fields;
}

/** `/v1/notification-rules`: who is told of which alarms, by email. */
export function registerRuleRoutes(app: App, services: AppServices, changed: (organizationId: string) => void): void {
  const { db } = services;
  const rules = resourceRoutes(app, services, {
    path: '/v1/notification-rules',
    resource: RuleResource,
    schema: RuleJson,
    noun: 'notification rule',
    tags: ['notifications'],
    scopes: { read: ['alarms:read'], write: ['alarms:write'] },
    relationships: {
      threshold: 'threshold_id',
      group: 'group_id',
      users: 'user_ids',
      groups: 'group_ids',
      escalation_users: 'escalation_user_ids',
      escalation_groups: 'escalation_group_ids',
    },
  });

  rules.list(
    {
      summary: 'List notification rules',
      sorts: RULE_SORTS,
      defaultSort: 'created_at',
      filters: {
        threshold_id: Type.Optional(Type.String({ maxLength: 100 })),
        group_id: Type.Optional(Type.String({ maxLength: 100 })),
        enabled: Type.Optional(Type.Boolean()),
      },
    },
    ({ organizationId, query, sort, page }) =>
      listRules(db, organizationId, { thresholdId: query.threshold_id, groupId: query.group_id, enabled: query.enabled }, sort, page),
  );

  rules.get({ summary: 'Get a notification rule' }, ({ organizationId, id }) => findRule(db, organizationId, id));

  rules.create(
    { summary: 'Tell people of the alarms of a threshold or of a group of sensors, by email', body: RuleCreate },
    async ({ organizationId, body }) => {
      const fields = checked({
        name: body.name ?? null,
        threshold_id: body.threshold_id ?? null,
        group_id: body.group_id ?? null,
        min_severity: body.min_severity ?? 'info',
        repeat_every_seconds: body.repeat_every_seconds ?? null,
        escalate_after_seconds: body.escalate_after_seconds ?? null,
        enabled: body.enabled ?? true,
        user_ids: body.user_ids ?? [],
        group_ids: body.group_ids ?? [],
        escalation_user_ids: body.escalation_user_ids ?? [],
        escalation_group_ids: body.escalation_group_ids ?? [],
      });
      const row = await dbGuarded(() => insertRule(db, organizationId, fields), CONSTRAINTS);
      changed(organizationId);
      return row;
    },
  );

  rules.update({ summary: 'Change a notification rule', body: RuleUpdate }, async ({ organizationId, id, body }) => {
    const current = await findRule(db, organizationId, id);
    if (!current) return undefined;
    const pick = <K extends keyof RuleFields>(key: K): RuleFields[K] =>
      (body as Partial<RuleFields>)[key] === undefined ? current[key] : ((body as Partial<RuleFields>)[key] as RuleFields[K]);
    const fields = checked({
      name: pick('name'),
      threshold_id: pick('threshold_id'),
      group_id: pick('group_id'),
      min_severity: pick('min_severity'),
      repeat_every_seconds: pick('repeat_every_seconds'),
      escalate_after_seconds: pick('escalate_after_seconds'),
      enabled: pick('enabled'),
      user_ids: pick('user_ids'),
      group_ids: pick('group_ids'),
      escalation_user_ids: pick('escalation_user_ids'),
      escalation_group_ids: pick('escalation_group_ids'),
    });
    const row = await dbGuarded(() => updateRule(db, organizationId, id, fields), CONSTRAINTS);
    changed(organizationId);
    return row;
  });

  rules.remove({ summary: 'Delete a notification rule' }, async ({ organizationId, id }) => {
    const removed = await deleteRule(db, organizationId, id);
    changed(organizationId);
    return removed;
  });
}
