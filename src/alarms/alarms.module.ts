import type { Module } from '../module.js';
import { alarmStage } from './alarm-stage.js';
import { registerAlarmRoutes } from './alarms.routes.js';
import { AlarmService } from './alarms.service.js';
import * as m0012 from './migrations/0012_alarms.js';
import { ThresholdCache } from './threshold-cache.js';
import { silentSensors, thresholdsWithDueBreaches } from './thresholds.repo.js';
import { registerThresholdRoutes } from './thresholds.routes.js';

/** Thresholds looked at per check (the next check takes the rest). */
const CHECK_BATCH = 500;

/**
 * Alarms: thresholds evaluated at ingest (a stage in the batch's transaction), a periodic check
 * for excursions whose delay ran out without a new reading and for silent sensors (a job: one
 * node at a time), alarms with their history and comments, each change an event in the outbox.
 */
export const alarmsModule: Module = {
  name: 'alarms',
  migrations: { '0012_alarms': m0012 },
  register(app, services) {
    const cache = new ThresholdCache(services.db);
    const alarms = new AlarmService(services.db, services.events, services.config.publicUrl);
    services.ingest.addStage(alarmStage(cache, alarms));
    services.jobs.add({
      name: 'alarms-check',
      intervalMs: services.config.env.ALARM_CHECK_INTERVAL * 1000,
      runAtStart: true,
      async run(stopping) {
        const now = Date.now();
        for (const threshold of await thresholdsWithDueBreaches(services.db, CHECK_BATCH)) {
          if (stopping()) return;
          await alarms.triggerDueBreach(threshold, now);
        }
        for (const threshold of await silentSensors(services.db, CHECK_BATCH)) {
          if (stopping()) return;
          await alarms.raiseOffline(threshold, now);
        }
      },
    });
    registerThresholdRoutes(app, services, cache);
    registerAlarmRoutes(app, services, alarms);
  },
};
