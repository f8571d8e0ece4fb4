import type { ColumnType, Generated } from 'kysely';

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;

/**
 * The outbox: every event the platform raised, written in the transaction of the change that
 * caused it (events/outbox.ts). Consumers (webhook delivery, notifications) record their own work
 * against an event in that same transaction; the row keeps the payload once for all of them.
 */
export interface EventsTable {
  id: Generated<string>;
  organization_id: string;
  /** One of EVENT_TYPES (events/event-types.ts). */
  type: string;
  /** The resource the event is about, in its /v1 JSON form. */
  data: ColumnType<unknown, string, never>;
  /** When it happened (a reading's time, an alarm's change); the delivery body's `timestamp`. */
  occurred_at: ColumnType<Date, Date | string, never>;
  created_at: CreatedAt;
}

export interface EventTables {
  events: EventsTable;
}

// This capability's tables are part of the one Database type (storage/schema.ts).
declare module '../storage/schema.js' {
  interface Database extends EventTables {}
}
