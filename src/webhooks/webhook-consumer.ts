import type { EventType, StoredEvent } from '../events/event-types.js';
import type { EventConsumer } from '../events/outbox.js';
import type { Db } from '../storage/database.js';
import { OrganizationCache } from '../storage/organization-cache.js';
import { enqueueDeliveries, subscribedTypes } from './tasks.repo.js';

/**
 * The outbox's webhook consumer: in the event's transaction, a delivery task for every enabled
 * subscription of the organization that wants its type. `wants` answers from a per-organization
 * cache of subscribed types (dropped on this node at every change), so a high-volume producer
 * (reading.created) costs nothing where nobody subscribes.
 */
export class WebhookConsumer implements EventConsumer {
  readonly name = 'webhooks';
  private readonly types = new OrganizationCache(subscribedTypes);

  constructor(private readonly db: Db) {}

  async wants(organizationId: string, type: EventType): Promise<boolean> {
    return (await this.types.get(this.db, organizationId)).has(type);
  }

  accept(tx: Db, events: readonly StoredEvent[]): Promise<void> {
    return enqueueDeliveries(tx, events);
  }

  /** A subscription of the organization changed on this node. */
  forget(organizationId: string): void {
    this.types.forget(organizationId);
  }
}
