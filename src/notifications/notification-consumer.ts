import type { EventType, StoredEvent } from '../events/event-types.js';
import type { EventConsumer } from '../events/outbox.js';
import type { Db } from '../storage/database.js';
import { OrganizationCache } from '../storage/organization-cache.js';
import { hasEnabledRules } from './rules.repo.js';
import { NOTIFIED_TYPES, enqueueForEvents } from './tasks.repo.js';

/**
 * The outbox's notification consumer: in the event's transaction, a task per recipient of every
 * enabled rule covering the alarm. `wants` answers from a per-organization cache (dropped on this
 * node at every rule change); `accept` decides from the database.
 */
export class NotificationConsumer implements EventConsumer {
  readonly name = 'notifications';
  private readonly hasRules = new OrganizationCache(hasEnabledRules);

  constructor(private readonly db: Db) {}

  async wants(organizationId: string, type: EventType): Promise<boolean> {
    return NOTIFIED_TYPES.has(type) && (await this.hasRules.get(this.db, organizationId));
  }

  accept(tx: Db, events: readonly StoredEvent[]): Promise<void> {
    return enqueueForEvents(tx, events);
  }

  forget(organizationId: string): void {
    this.hasRules.forget(organizationId);
  }
}
