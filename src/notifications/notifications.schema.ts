import type { ColumnType, Generated, Selectable } from 'kysely';

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type UpdatedAt = ColumnType<Date, Date | string | undefined, Date | string>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;

/** Who is told of the alarms of a threshold, or of any sensor of a group, and how insistently. */
export interface NotificationRulesTable {
  id: Generated<string>;
  organization_id: string;
  name: string | null;
  /** Exactly one of threshold_id and group_id (a group's sensors). */
  threshold_id: string | null;
  group_id: string | null;
  /** Alarms below this severity are not told. */
  min_severity: ColumnType<string, string | undefined, string>;
  /** Told again this often while the alarm is active (not acknowledged); null: once. */
  repeat_every_seconds: number | null;
  /** The escalation recipients are told when the alarm is still active this long after it triggered. */
  escalate_after_seconds: number | null;
  enabled: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

export interface NotificationRuleUsersTable {
  organization_id: string;
  rule_id: string;
  user_id: string;
  /** On the escalation list rather than the first one. */
  escalation: boolean;
}

export interface NotificationRuleGroupsTable {
  organization_id: string;
  rule_id: string;
  group_id: string;
  escalation: boolean;
}

/** A person's notification choices (no row: email on, no quiet hours). */
export interface NotificationPreferencesTable {
  user_id: string;
  email_enabled: ColumnType<boolean, boolean | undefined, boolean>;
  /** Quiet hours, local `HH:MM` in `quiet_timezone`: non-critical emails wait until they end. */
  quiet_start: string | null;
  quiet_end: string | null;
  quiet_timezone: string | null;
  updated_at: UpdatedAt;
}

export type NotificationReason = 'alarm.triggered' | 'sensor.offline' | 'alarm.acknowledged' | 'alarm.resolved' | 'repeat' | 'escalation';
export type NotificationState = 'pending' | 'sent' | 'skipped' | 'failed' | 'cancelled';

/** One email to one person, sent at least once by the notification worker. */
export interface NotificationTasksTable {
  id: Generated<string>;
  organization_id: string;
  /** The outbox event it tells of; null for repeats and escalations (the periodic check). */
  event_id: string | null;
  alarm_id: string;
  rule_id: string | null;
  user_id: string;
  reason: NotificationReason;
  /** Repeats: their number (1, 2, …) since the alarm triggered; 0 otherwise. */
  step: ColumnType<number, number | undefined, number>;
  severity: string;
  state: ColumnType<NotificationState, NotificationState | undefined, NotificationState>;
  attempts: ColumnType<number, number | undefined, number>;
  /** Permanent (5xx) refusals so far: a few of them end the task. */
  permanent_failures: ColumnType<number, number | undefined, number>;
  next_attempt_at: ColumnType<Date, Date | string | undefined, Date | string>;
  lease_id: string | null;
  lease_expires_at: Timestamp | null;
  /** Why the last attempt failed, or why it was skipped. */
  last_error: string | null;
  sent_at: Timestamp | null;
  /** Until when quiet hours last held it; null if they never did. */
  held_until: Timestamp | null;
  created_at: CreatedAt;
}

export type NotificationRule = Selectable<NotificationRulesTable>;
export type NotificationPreferences = Selectable<NotificationPreferencesTable>;

export interface NotificationTables {
  notification_rules: NotificationRulesTable;
  notification_rule_users: NotificationRuleUsersTable;
  notification_rule_groups: NotificationRuleGroupsTable;
  notification_preferences: NotificationPreferencesTable;
  notification_tasks: NotificationTasksTable;
}

// This capability's tables are part of the one Database type (storage/schema.ts).
declare module '../storage/schema.js' {
  interface Database extends NotificationTables {}
}
