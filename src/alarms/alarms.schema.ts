import type { ColumnType, Generated, Selectable } from 'kysely';

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type UpdatedAt = ColumnType<Date, Date | string | undefined, Date | string>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;

/** The values of the enumerations below, for the API's schemas and the console's filters alike. */
export const SEVERITIES = ['info', 'warning', 'critical'] as const;
export const ALARM_STATUSES = ['active', 'acknowledged', 'resolved'] as const;

export type Severity = (typeof SEVERITIES)[number];
export type AlarmStatus = (typeof ALARM_STATUSES)[number];
/** `range`: a reading outside min/max (for longer than the delay); `offline`: the sensor silent for its period. */
export type AlarmKind = 'range' | 'offline';

/** What raises alarms for a sensor: a range, an offline period, or both. */
export interface AlarmThresholdsTable {
  id: Generated<string>;
  organization_id: string;
  sensor_id: string;
  name: string | null;
  min: number | null;
  max: number | null;
  /** Readings must stay out of range this long before the alarm triggers. */
  delay_seconds: ColumnType<number, number | undefined, number>;
  severity: ColumnType<Severity, Severity | undefined, Severity>;
  /** The sensor silent this long raises an offline alarm; null: not watched. */
  offline_after_seconds: number | null;
  enabled: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

/**
 * The evaluation state of a threshold, apart from its settings: locked (FOR UPDATE) by whoever
 * evaluates it, so concurrent batches and server processes decide one after the other.
 */
export interface AlarmThresholdStateTable {
  threshold_id: string;
  organization_id: string;
  /** When the current excursion began (the first reading out of range); null when in range. */
  breach_since: Timestamp | null;
  /** The reading that began it. */
  breach_value: number | null;
  /** The threshold's open range and offline alarms. */
  open_range_alarm_id: string | null;
  open_offline_alarm_id: string | null;
}

export interface AlarmsTable {
  id: Generated<string>;
  organization_id: string;
  /** Null once the threshold is deleted (the alarm and its history stay). */
  threshold_id: string | null;
  sensor_id: string;
  kind: AlarmKind;
  severity: Severity;
  status: ColumnType<AlarmStatus, AlarmStatus | undefined, AlarmStatus>;
  /** `above_max`, `below_min` or `offline`. */
  condition: string;
  /** The reading that triggered it (range alarms). */
  value: number | null;
  /** The limit it crossed (range) or the offline period in seconds. */
  limit_value: number | null;
  /** When the condition began (the first reading out of range, or the last one heard). */
  started_at: Timestamp;
  triggered_at: Timestamp;
  acknowledged_at: Timestamp | null;
  acknowledged_by: string | null;
  resolved_at: Timestamp | null;
  resolved_by: string | null;
  /** `auto` (readings back in range, the sensor reporting again) or `user`. */
  resolution: string | null;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

/** Who did what to an alarm, and when: its history. */
export interface AlarmActivityTable {
  id: Generated<string>;
  alarm_id: string;
  organization_id: string;
  /** triggered, acknowledged, resolved, commented, notified, escalated */
  action: string;
  /** The user who acted; null for the system (evaluation, jobs) or an application acting for itself. */
  actor_user_id: string | null;
  /** `system`, `user` or `client` (an application acting for itself). */
  actor_kind: string;
  note: string | null;
  at: ColumnType<Date, Date | string | undefined, never>;
}

export interface AlarmCommentsTable {
  id: Generated<string>;
  alarm_id: string;
  organization_id: string;
  author_user_id: string | null;
  body: string;
  created_at: CreatedAt;
}

export type AlarmThreshold = Selectable<AlarmThresholdsTable>;
export type Alarm = Selectable<AlarmsTable>;
export type AlarmComment = Selectable<AlarmCommentsTable>;
export type AlarmActivity = Selectable<AlarmActivityTable>;

export interface AlarmTables {
  alarm_thresholds: AlarmThresholdsTable;
  alarm_threshold_state: AlarmThresholdStateTable;
  alarms: AlarmsTable;
  alarm_activity: AlarmActivityTable;
  alarm_comments: AlarmCommentsTable;
}

// This capability's tables are part of the one Database type (storage/schema.ts).
declare module '../storage/schema.js' {
  interface Database extends AlarmTables {}
}
