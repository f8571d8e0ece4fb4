import type { ColumnType, Generated } from 'kysely';

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type UpdatedAt = ColumnType<Date, Date | string | undefined, Date | string>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;

/** A subscription: where an organization's events of some types are sent. */
export interface WebhooksTable {
  id: Generated<string>;
  organization_id: string;
  url: string;
  description: string | null;
  event_types: ColumnType<string[], string[], string[]>;
  enabled: ColumnType<boolean, boolean | undefined, boolean>;
  /** Why delivery stopped (`gone`: a 410 answer; `failing`: 5 events in a row failed every attempt). */
  disabled_reason: string | null;
  /** The signing secret, sealed (security/secret-box.ts, bound to the webhook id). */
  secret_sealed: string;
  /** The secret before the last rotation, also signed with until `previous_secret_expires_at`. */
  previous_secret_sealed: string | null;
  previous_secret_expires_at: Timestamp | null;
  /** Events in a row whose every attempt failed; reset by a success. */
  failed_events: ColumnType<number, number | undefined, number>;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

/** The delivery of one event to one subscription, until it succeeds or its schedule runs out. */
export interface WebhookTasksTable {
  id: Generated<string>;
  webhook_id: string;
  event_id: string;
  /** Attempts made so far (the next one is `attempts + 1`). */
  attempts: ColumnType<number, number | undefined, number>;
  /** Failed attempts since the schedule (re)started: the index of the next delay. */
  schedule_step: ColumnType<number, number | undefined, number>;
  state: ColumnType<
    'pending' | 'delivered' | 'failed' | 'cancelled',
    'pending' | undefined,
    'pending' | 'delivered' | 'failed' | 'cancelled'
  >;
  next_attempt_at: ColumnType<Date, Date | string | undefined, Date | string>;
  /** The worker holding the task and until when: another node takes it over only after that. */
  lease_id: string | null;
  lease_expires_at: Timestamp | null;
}

/** One attempt (the delivery log of /v1/webhooks/{id}/deliveries). */
export interface WebhookDeliveriesTable {
  id: Generated<string>;
  task_id: string;
  webhook_id: string;
  event_id: string;
  attempt: number;
  /** The receiver's status; null when it gave none (refused, timed out). */
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  created_at: CreatedAt;
  /** When the next attempt is due; null when this was the last. */
  next_attempt_at: Timestamp | null;
}

export interface WebhookTables {
  webhooks: WebhooksTable;
  webhook_tasks: WebhookTasksTable;
  webhook_deliveries: WebhookDeliveriesTable;
}

// This capability's tables are part of the one Database type (storage/schema.ts).
declare module '../storage/schema.js' {
  interface Database extends WebhookTables {}
}
