/**
 * The events a subscriber can receive (SPEC §5, §8 "Webhook events"), and the body every
 * consumer sends for one: `{type, timestamp, data}`, `data` the resource in its /v1 JSON form.
 */
export const EVENT_TYPES = [
  'alarm.triggered',
  'alarm.acknowledged',
  'alarm.resolved',
  'sensor.offline',
  'calibration.due',
  'reading.created',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

/** An event as a producer raises it, inside the transaction of the change. */
export interface EventDraft {
  organizationId: string;
  type: EventType;
  /** Epoch milliseconds. */
  occurredAt: number;
  data: Record<string, unknown>;
}

/** An event as stored in the outbox. */
export interface StoredEvent extends EventDraft {
  id: string;
}

/** The body delivered for an event, the same on every attempt. */
export function eventBody(event: StoredEvent): string {
  return JSON.stringify({ type: event.type, timestamp: new Date(event.occurredAt).toISOString(), data: event.data });
}

/**
 * The event's Standard Webhooks message id (`webhook-id`), the same on every attempt so that
 * receivers can drop duplicates: `msg_` and the event's uuid without dashes.
 */
export function messageId(eventId: string): string {
  return `msg_${eventId.replaceAll('-', '')}`;
}
