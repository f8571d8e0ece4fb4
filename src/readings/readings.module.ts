import type { Module } from '../module.js';
import { LatestReadingCache } from './latest-cache.js';
import * as m0005 from './migrations/0005_readings.js';
import * as m0006 from './migrations/0006_readings_covering_key.js';
import * as m0020 from './migrations/0020_readings_retention.js';
import { readingCreatedStage } from './reading-created.js';
import { DEFAULT_PARTITION_POLICY, maintainReadingPartitions } from './partitions.js';
import { registerReadingRoutes } from './readings.routes.js';
import { enforceReadingsRetention, readingsHorizon } from './retention.js';

/** Every six hours (and on start) the partitions of the coming months are made sure of. */
export const PARTITION_MAINTENANCE_INTERVAL_MS = 6 * 3600_000;
/** Retention periods are in days: an hourly run keeps readings at most an hour past theirs. */
export const RETENTION_INTERVAL_MS = 3600_000;

/**
 * Readings: the partitioned store, the query routes, the latest-reading cache (dropped for the
 * sensors of each batch the ingest pipeline commits on this node), `reading.created` events for
 * the organizations that want them, partition upkeep and readings retention as jobs.
 * Until a month's partition exists its readings simply land in the default partition (and move
 * later), so the job never stands in the way of start-up or requests.
 */
export const readingsModule: Module = {
  name: 'readings',
  migrations: { '0005_readings': m0005, '0006_readings_covering_key': m0006, '0020_readings_retention': m0020 },
  register(app, services) {
    const retentionDays = services.config.env.READINGS_RETENTION_DAYS;
    const latestCache = new LatestReadingCache(services.db);
    registerReadingRoutes(app, services, latestCache);
    services.ingest.addStage(readingCreatedStage(services.events));
    services.ingest.afterCommit((batch) => latestCache.invalidate(batch.sensorIds));
    services.jobs.add({
      name: 'readings-partitions',
      intervalMs: PARTITION_MAINTENANCE_INTERVAL_MS,
      runAtStart: true,
      async run(stopping) {
        const now = new Date();
        const horizon = await readingsHorizon(services.db, retentionDays, now);
        const result = await maintainReadingPartitions(services.db, now, DEFAULT_PARTITION_POLICY, stopping, horizon);
        if (result.created.length > 0 || result.split.length > 0) app.log.info(result, 'readings partitions created');
      },
    });
    services.jobs.add({
      name: 'readings-retention',
      intervalMs: RETENTION_INTERVAL_MS,
      async run(stopping) {
        const result = await enforceReadingsRetention(services.db, { defaultDays: retentionDays, stopping });
        if (result.busyPartitions.length > 0) app.log.warn(result, 'readings partitions past retention were busy; retried next run');
        else if (result.droppedPartitions.length > 0 || result.deletedReadings > 0) app.log.info(result, 'readings past retention deleted');
      },
    });
  },
};
