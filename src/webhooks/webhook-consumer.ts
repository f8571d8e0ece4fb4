import type { EventType, StoredEvent } from '../events/event-types.js';
import type { EventConsumer } from '../events/outbox.js';
import type { Db } from '../storage/database.js';
import { enqueueDeliveries, subscribedTypes } from './tasks.repo.js';

/** How long an organization's subscribed event types are remembered (changes on another node show within it). */
const CACHE_MS = 1_000;

/**
 * The outbox's webhook consumer: in the event's transaction, a delivery task for every enabled
 * subscription of the organization that wants its type. `wants` answers from a per-organization
 * cache of subscribed types (dropped on this node at every change), so a high-volume producer
 * (reading.created) costs nothing where nobody subscribes.
 */
export class WebhookConsumer implements EventConsumer {
  readonly name = 'webhooks';
  private readonly types = new Map<string, { types: Set<string>; until: number }>();

  constructor(private readonly db: Db) {}

  async wants(organizationId: string, type: EventType): Promise<boolean> {
    const now = Date.now();
    let cached = this.types.get(organizationId);
    if (!cached || cached.until < now) {
      if (this.types.size > 10_000) this.types.clear();
      cached = { types: await subscribedTypes(this.db, organizationId), until: now + CACHE_MS };
      this.types.set(organizationId, cached);
    }
    return cached.types.has(type);
  }

  accept(tx: Db, events: readonly StoredEvent[]): Promise<void> {
    return enqueueDeliveries(tx, events);
  }

  /** A subscription of the organization changed on this node. */
  forget(organizationId: string): void {
    this.types.delete(organizationId);
  }
}
