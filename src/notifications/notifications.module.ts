import type { Module } from '../module.js';
import { derivedServerKey } from '../security/secret-box.js';
import { smtpMailer } from './mailer.js';
import * as m0014 from './migrations/0014_notifications.js';
import * as m0019 from './migrations/0019_notification_holds.js';
import { NotificationConsumer } from './notification-consumer.js';
import { NotificationWorker } from './notification-worker.js';
import { registerPreferenceRoutes } from './preferences.routes.js';
import { registerRuleRoutes } from './rules.routes.js';
import { enqueueRepeatsAndEscalations } from './tasks.repo.js';

/**
 * Notifications: rules saying who is told of which alarms by email (`/v1/notification-rules`),
 * per-person preferences (email off, quiet hours) and the unsubscribe link; a consumer of the
 * event outbox recording one email per recipient in the event's transaction; a periodic check
 * (one node at a time) recording repeats until acknowledged and escalations; a worker on every
 * node sending them with nodemailer, at least once, each sent email written to the alarm's history.
 */
export const notificationsModule: Module = {
  name: 'notifications',
  migrations: { '0014_notifications': m0014, '0019_notification_holds': m0019 },
  register(app, services) {
    const { env } = services.config;
    const unsubscribeKey = derivedServerKey(env.SECRETS_KEY, services.config.dataDir, 'sensorcloud/notifications/unsubscribe/v1');
    const mailer = env.SMTP_URL ? smtpMailer(env.SMTP_URL, env.SMTP_FROM) : undefined;
    if (!mailer) app.log.info('SMTP_URL is not set: email notifications are off (each one is recorded as skipped)');
    const consumer = new NotificationConsumer(services.db);
    services.events.addConsumer(consumer);
    const worker = new NotificationWorker(
      services.db,
      {
        publicUrl: services.config.publicUrl,
        concurrency: 8,
        permanentFailuresToGiveUp: 3,
        maxAttempts: 300,
        firstRetryMs: 1_000,
        maxRetryMs: 10 * 60_000,
      },
      mailer,
      unsubscribeKey,
      app.log,
    );
    services.invalidations.on((announcement) => {
      if (announcement.kind === 'events' || announcement.kind === 'all') worker.wake();
    });
    services.jobs.add({
      name: 'notifications-repeat',
      intervalMs: env.NOTIFICATION_CHECK_INTERVAL * 1000,
      async run() {
        if ((await enqueueRepeatsAndEscalations(services.db)) > 0) worker.wake();
      },
    });
    app.addHook('onReady', async () => worker.start());
    app.addHook('onClose', () => worker.stop());
    registerRuleRoutes(app, services, (organizationId) => consumer.forget(organizationId));
    registerPreferenceRoutes(app, services, unsubscribeKey);
  },
};
