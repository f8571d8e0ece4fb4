import { sql } from 'kysely';
import type { Db } from '../storage/database.js';
import { type Page, type PageRequest, type Sort, type SortField, keysetPage, paginate } from '../storage/keyset.js';
import { isUuid } from '../storage/sql.js';
import type { NotificationRule } from './notifications.schema.js';

/** Notification rules of an organization and their recipient lists. Every query is scoped by organization_id. */

export interface RuleView extends NotificationRule {
  user_ids: string[];
  group_ids: string[];
  escalation_user_ids: string[];
  escalation_group_ids: string[];
}

export interface RuleFields {
  name: string | null;
  threshold_id: string | null;
  group_id: string | null;
  min_severity: string;
  repeat_every_seconds: number | null;
  escalate_after_seconds: number | null;
  enabled: boolean;
  user_ids: readonly string[];
  group_ids: readonly string[];
  escalation_user_ids: readonly string[];
  escalation_group_ids: readonly string[];
}

export const RULE_SORTS: Record<string, SortField> = {
  created_at: { column: 'notification_rules.created_at', cast: 'timestamptz' },
  updated_at: { column: 'notification_rules.updated_at', cast: 'timestamptz' },
};

export interface RuleFilter {
  thresholdId?: string | undefined;
  groupId?: string | undefined;
  enabled?: boolean | undefined;
}

async function withRecipients(db: Db, organizationId: string, rules: NotificationRule[]): Promise<RuleView[]> {
  if (rules.length === 0) return [];
  const ids = rules.map((r) => r.id);
  const [users, groups] = await Promise.all([
    db
      .selectFrom('notification_rule_users')
      .select(['rule_id', 'user_id', 'escalation'])
      .where('organization_id', '=', organizationId)
      .where('rule_id', 'in', ids)
      .orderBy('user_id')
      .execute(),
    db
      .selectFrom('notification_rule_groups')
      .select(['rule_id', 'group_id', 'escalation'])
      .where('organization_id', '=', organizationId)
      .where('rule_id', 'in', ids)
      .orderBy('group_id')
      .execute(),
  ]);
  return rules.map((rule) => ({
    ...rule,
    user_ids: users.filter((u) => u.rule_id === rule.id && !u.escalation).map((u) => u.user_id),
    group_ids: groups.filter((g) => g.rule_id === rule.id && !g.escalation).map((g) => g.group_id),
    escalation_user_ids: users.filter((u) => u.rule_id === rule.id && u.escalation).map((u) => u.user_id),
    escalation_group_ids: groups.filter((g) => g.rule_id === rule.id && g.escalation).map((g) => g.group_id),
  }));
}

export async function listRules(
  db: Db,
  organizationId: string,
  filter: RuleFilter,
  sort: Sort,
  page: PageRequest,
): Promise<Page<RuleView>> {
  let query = db.selectFrom('notification_rules').selectAll().where('organization_id', '=', organizationId);
  if (filter.thresholdId !== undefined)
    query = isUuid(filter.thresholdId) ? query.where('threshold_id', '=', filter.thresholdId) : query.where(sql<boolean>`false`);
  if (filter.groupId !== undefined)
    query = isUuid(filter.groupId) ? query.where('group_id', '=', filter.groupId) : query.where(sql<boolean>`false`);
  if (filter.enabled !== undefined) query = query.where('enabled', '=', filter.enabled);
  const result = keysetPage(await paginate(query, sort, 'notification_rules.id', page).execute(), sort, page);
  return { ...result, items: await withRecipients(db, organizationId, result.items) };
}

export async function findRule(db: Db, organizationId: string, id: string): Promise<RuleView | undefined> {
  if (!isUuid(id)) return undefined;
  const row = await db
    .selectFrom('notification_rules')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .executeTakeFirst();
  return row ? (await withRecipients(db, organizationId, [row]))[0] : undefined;
}

async function saveRecipients(tx: Db, organizationId: string, ruleId: string, fields: RuleFields): Promise<void> {
  await tx.deleteFrom('notification_rule_users').where('organization_id', '=', organizationId).where('rule_id', '=', ruleId).execute();
  await tx.deleteFrom('notification_rule_groups').where('organization_id', '=', organizationId).where('rule_id', '=', ruleId).execute();
  const users = [
    ...[...new Set(fields.user_ids)].map((user_id) => ({ user_id, escalation: false })),
    ...[...new Set(fields.escalation_user_ids)].map((user_id) => ({ user_id, escalation: true })),
  ];
  const groups = [
    ...[...new Set(fields.group_ids)].map((group_id) => ({ group_id, escalation: false })),
    ...[...new Set(fields.escalation_group_ids)].map((group_id) => ({ group_id, escalation: true })),
  ];
  if (users.length > 0)
    await tx
      .insertInto('notification_rule_users')
      .values(users.map((u) => ({ organization_id: organizationId, rule_id: ruleId, ...u })))
      .execute();
  if (groups.length > 0)
    await tx
      .insertInto('notification_rule_groups')
      .values(groups.map((g) => ({ organization_id: organizationId, rule_id: ruleId, ...g })))
      .execute();
}

const columns = (fields: RuleFields) => ({
  name: fields.name,
  threshold_id: fields.threshold_id,
  group_id: fields.group_id,
  min_severity: fields.min_severity,
  repeat_every_seconds: fields.repeat_every_seconds,
  escalate_after_seconds: fields.escalate_after_seconds,
  enabled: fields.enabled,
});

export async function insertRule(db: Db, organizationId: string, fields: RuleFields): Promise<RuleView> {
  const id = await db.transaction().execute(async (tx) => {
    const row = await tx
      .insertInto('notification_rules')
      .values({ organization_id: organizationId, ...columns(fields) })
      .returning('id')
      .executeTakeFirstOrThrow();
    await saveRecipients(tx, organizationId, row.id, fields);
    return row.id;
  });
  return (await findRule(db, organizationId, id))!;
}

export async function updateRule(db: Db, organizationId: string, id: string, fields: RuleFields): Promise<RuleView | undefined> {
  if (!isUuid(id)) return undefined;
  const updated = await db.transaction().execute(async (tx) => {
    const row = await tx
      .updateTable('notification_rules')
      .set({ ...columns(fields), updated_at: new Date() })
      .where('organization_id', '=', organizationId)
      .where('id', '=', id)
      .returning('id')
      .executeTakeFirst();
    if (row) await saveRecipients(tx, organizationId, id, fields);
    return row !== undefined;
  });
  return updated ? findRule(db, organizationId, id) : undefined;
}

export async function deleteRule(db: Db, organizationId: string, id: string): Promise<boolean> {
  if (!isUuid(id)) return false;
  const result = await db
    .deleteFrom('notification_rules')
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** Whether the organization has an enabled rule (the outbox consumer's `wants`). */
export async function hasEnabledRules(db: Db, organizationId: string): Promise<boolean> {
  const row = await db
    .selectFrom('notification_rules')
    .select('id')
    .where('organization_id', '=', organizationId)
    .where('enabled', '=', true)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}
