import type { Db } from '../storage/database.js';
import { announce } from '../storage/invalidations.js';
import type { EventDraft, EventType, StoredEvent } from './event-types.js';
import { insertEvents } from './events.repo.js';

/**
 * What reacts to events: webhook delivery, notifications. A consumer records its own work (a
 * delivery due, a message to send) in the transaction that raised the events, so that work exists
 * exactly when the change does, and is done later by its own worker, at least once.
 */
export interface EventConsumer {
  name: string;
  /**
   * Whether events of `type` in the organization concern it (a subscription exists, say). May
   * answer from a cache that is at most a second stale; an event raised meanwhile is stored and
   * offered to `accept`, which decides from the database.
   */
  wants(organizationId: string, type: EventType): boolean | Promise<boolean>;
  /** Records, inside `tx`, what it must do for these events. */
  accept(tx: Db, events: readonly StoredEvent[]): Promise<void>;
}

/**
 * The transactional outbox. A producer (alarms, readings, calibrations) calls `emit` inside the
 * transaction of its change: the events are stored and every consumer records its work in that
 * same transaction, then the commit wakes the consumers' workers on every node (an `events`
 * announcement, delivered only at commit). Nothing is sent from inside a transaction, and nothing
 * committed is lost: a worker that missed the wake-up finds the rows on its next poll.
 */
export class EventOutbox {
  private readonly consumers: EventConsumer[] = [];

  addConsumer(consumer: EventConsumer): void {
    this.consumers.push(consumer);
  }

  /** Whether any consumer wants events of `type` in the organization: high-volume producers (reading.created) ask first. */
  async wants(organizationId: string, type: EventType): Promise<boolean> {
    for (const consumer of this.consumers) if (await consumer.wants(organizationId, type)) return true;
    return false;
  }

  async emit(tx: Db, drafts: readonly EventDraft[]): Promise<StoredEvent[]> {
    if (drafts.length === 0) return [];
    const events = await insertEvents(tx, drafts);
    for (const consumer of this.consumers) await consumer.accept(tx, events);
    await announce(tx, { kind: 'events' });
    return events;
  }
}
