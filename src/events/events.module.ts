import type { Module } from '../module.js';
import { purgeEvents } from './events.repo.js';
import * as m0010 from './migrations/0010_events.js';

const DAY_MS = 86_400_000;

/**
 * The event outbox's table and its retention. The outbox itself is a shared service
 * (`services.events`, events/outbox.ts): producers emit into it, consumers register on it.
 */
export const eventsModule: Module = {
  name: 'events',
  migrations: { '0010_events': m0010 },
  register(app, services) {
    const retentionDays = services.config.env.EVENT_RETENTION_DAYS;
    services.jobs.add({
      name: 'events-retention',
      intervalMs: 3600_000,
      async run(stopping) {
        const purged = await purgeEvents(services.db, new Date(Date.now() - retentionDays * DAY_MS), stopping);
        if (purged > 0) app.log.info({ purged, retentionDays }, 'old events purged');
      },
    });
  },
};
