import { sql } from 'kysely';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Db } from '../storage/database.js';
import type { TaskOutcome } from './tasks.repo.js';

/**
 * Webhook delivery on /metrics: this node's attempts by outcome, and the installation's backlog
 * (deliveries due and not yet made, and how late the oldest is). A backlog that grows while
 * attempts are mostly `retrying` is receivers failing; one that grows while they are `delivered`
 * is too little delivery capacity (WEBHOOK_CONCURRENCY, or nodes).
 */
export interface DeliveryMetrics {
  attempted(outcome: TaskOutcome['state']): void;
}

/** Outcome states as operators read them. */
const OUTCOME_LABEL: Record<TaskOutcome['state'], string> = { delivered: 'delivered', pending: 'retrying', gone: 'gone', failed: 'failed' };

export function deliveryMetrics(registry: Registry, db: Db): DeliveryMetrics {
  const attempts = new Counter({
    name: 'webhook_delivery_attempts_total',
    help: 'Webhook delivery attempts made by this node, by outcome (delivered, retrying, gone: 410, failed: retries exhausted)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  // Both gauges come from one query per scrape (prom-client collects every metric of a scrape
  // together, so the second collect finds the first one's query in flight).
  let backlog: Promise<{ due: number; oldest: number } | undefined> | undefined;
  const readBacklog = () => {
    backlog ??= sql<{ due: number; oldest: number | null }>`
      select count(*)::int as due, coalesce(extract(epoch from now() - min(next_attempt_at)), 0)::float8 as oldest
      from webhook_tasks where state = 'pending' and next_attempt_at <= now()`
      .execute(db)
      .then(({ rows }) => ({ due: rows[0]?.due ?? 0, oldest: rows[0]?.oldest ?? 0 }))
      // The database being away must not fail the scrape: the gauges are left out of it.
      .catch(() => undefined)
      .finally(() => setImmediate(() => (backlog = undefined)));
    return backlog;
  };
  new Gauge({
    name: 'webhook_deliveries_due',
    help: 'Webhook deliveries due now and not yet made, on all nodes',
    registers: [registry],
    async collect() {
      const read = await readBacklog();
      if (read) this.set(read.due);
    },
  });
  new Gauge({
    name: 'webhook_oldest_due_seconds',
    help: 'How long the oldest due webhook delivery has waited past its time (0: none due)',
    registers: [registry],
    async collect() {
      const read = await readBacklog();
      if (read) this.set(read.oldest);
    },
  });
  return { attempted: (outcome) => attempts.inc({ outcome: OUTCOME_LABEL[outcome] }) };
}
