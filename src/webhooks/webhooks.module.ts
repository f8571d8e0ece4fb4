import type { Module } from '../module.js';
import { serverSecretBox } from '../security/secret-box.js';
import { deliveryMetrics } from './delivery-metrics.js';
import { DeliveryWorker } from './delivery-worker.js';
import * as m0011 from './migrations/0011_webhooks.js';
import { parseRetrySchedule } from './retry-schedule.js';
import { WebhookConsumer } from './webhook-consumer.js';
import { registerWebhookRoutes } from './webhooks.routes.js';

/** SPEC §8: a subscription is disabled when this many events in a row failed every attempt. */
const FAILED_EVENTS_TO_DISABLE = 5;

/**
 * Signed webhooks (Standard Webhooks): subscriptions at /v1/webhooks, a consumer of the event
 * outbox that records a delivery task per subscription in the event's transaction, and a delivery
 * worker on every node that sends them at least once, retrying on WEBHOOK_RETRY_SCHEDULE.
 */
export const webhooksModule: Module = {
  name: 'webhooks',
  migrations: { '0011_webhooks': m0011 },
  register(app, services) {
    const { env } = services.config;
    const secrets = serverSecretBox(env.SECRETS_KEY, services.config.dataDir);
    if (services.databaseKind === 'postgres' && !env.SECRETS_KEY) {
      app.log.warn('SECRETS_KEY is not set: webhook secrets are sealed with DATA_DIR/secrets.key, which every server node must share');
    }
    const consumer = new WebhookConsumer(services.db);
    services.events.addConsumer(consumer);
    const worker = new DeliveryWorker(
      services.db,
      {
        schedule: parseRetrySchedule(env.WEBHOOK_RETRY_SCHEDULE),
        timeoutMs: env.WEBHOOK_TIMEOUT * 1000,
        concurrency: env.WEBHOOK_CONCURRENCY,
        allowPrivate: env.WEBHOOK_ALLOW_PRIVATE,
        failedEventsToDisable: FAILED_EVENTS_TO_DISABLE,
      },
      secrets,
      app.log,
      deliveryMetrics(services.metrics, services.db),
    );
    services.invalidations.on((announcement) => {
      if (announcement.kind === 'events' || announcement.kind === 'all') worker.wake();
    });
    app.addHook('onReady', async () => worker.start());
    app.addHook('onClose', () => worker.stop());
    registerWebhookRoutes(app, services, { secrets, consumer, allowPrivate: env.WEBHOOK_ALLOW_PRIVATE });
  },
};
