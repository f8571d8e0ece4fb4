import type { Module } from '../module.js';
import { LatestReadingCache } from './latest-cache.js';
import * as m0005 from './migrations/0005_readings.js';
import * as m0006 from './migrations/0006_readings_covering_key.js';
import { readingCreatedStage } from './reading-created.js';
import { DEFAULT_PARTITION_POLICY, maintainReadingPartitions } from './partitions.js';
import { registerReadingRoutes } from './readings.routes.js';

/** Every six hours (and on start) the partitions of the coming months are made sure of. */
export const PARTITION_MAINTENANCE_INTERVAL_MS = 6 * 3600_000;

/**
 * Readings: the partitioned store, the query routes, the latest-reading cache (dropped for the
 * sensors of each batch the ingest pipeline commits on this node), `reading.created` events for
 * the organizations that want them, and partition upkeep as a job.
 * Until a month's partition exists its readings simply land in the default partition (and move
 * later), so the job never stands in the way of start-up or requests.
 */
export const readingsModule: Module = {
  name: 'readings',
  migrations: { '0005_readings': m0005, '0006_readings_covering_key': m0006 },
  register(app, services) {
    const latestCache = new LatestReadingCache(services.db);
    registerReadingRoutes(app, services, latestCache);
    services.ingest.addStage(readingCreatedStage(services.events));
    services.ingest.afterCommit((batch) => latestCache.invalidate(batch.sensorIds));
    services.jobs.add({
      name: 'readings-partitions',
      intervalMs: PARTITION_MAINTENANCE_INTERVAL_MS,
      runAtStart: true,
      async run(stopping) {
        const result = await maintainReadingPartitions(services.db, new Date(), DEFAULT_PARTITION_POLICY, stopping);
        if (result.created.length > 0 || result.split.length > 0) app.log.info(result, 'readings partitions created');
      },
    });
  },
};
