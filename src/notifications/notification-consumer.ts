import type { EventType, StoredEvent } from '../events/event-types.js';
import type { EventConsumer } from '../events/outbox.js';
import type { Db } from '../storage/database.js';
import { hasEnabledRules } from './rules.repo.js';
import { NOTIFIED_TYPES, enqueueForEvents } from './tasks.repo.js';

/** How long whether an organization has enabled rules is remembered (changes on another node show within it). */
const CACHE_MS = 1_000;

/**
 * The outbox's notification consumer: in the event's transaction, a task per recipient of every
 * enabled rule covering the alarm. `wants` answers from a per-organization cache (dropped on this
 * node at every rule change); `accept` decides from the database.
 */
export class NotificationConsumer implements EventConsumer {
  readonly name = 'notifications';
  private readonly cache = new Map<string, { enabled: boolean; until: number }>();

  constructor(private readonly db: Db) {}

  async wants(organizationId: string, type: EventType): Promise<boolean> {
    if (!NOTIFIED_TYPES.has(type)) return false;
    const now = Date.now();
    let cached = this.cache.get(organizationId);
    if (!cached || cached.until < now) {
      if (this.cache.size > 10_000) this.cache.clear();
      cached = { enabled: await hasEnabledRules(this.db, organizationId), until: now + CACHE_MS };
      this.cache.set(organizationId, cached);
    }
    return cached.enabled;
  }

  accept(tx: Db, events: readonly StoredEvent[]): Promise<void> {
    return enqueueForEvents(tx, events);
  }

  forget(organizationId: string): void {
    this.cache.delete(organizationId);
  }
}
