import { installRepresentation } from '../api/representation.js';
import { ingestSettings, registerIngestRoutes } from '../ingest/ingest.routes.js';
import type { App } from '../server/app.js';
import type { AppServices } from '../server/context.js';
import { LatestReadingCache } from './latest-cache.js';
import { DEFAULT_PARTITION_POLICY, maintainReadingPartitions } from './partitions.js';
import { registerReadingRoutes } from './readings.routes.js';

/** Every six hours (and on start) the partitions of the coming months are made sure of. */
export const PARTITION_MAINTENANCE_INTERVAL_MS = 6 * 3600_000;

/**
 * Readings and ingest: the query routes, POST /v1/ingest, and the partition maintenance job
 * (on start, then periodically; stopped when the app closes). The one line in buildApp.
 */
export function registerReadings(app: App, services: AppServices): void {
  installRepresentation(app);
  const latestCache = new LatestReadingCache(services.db);
  registerReadingRoutes(app, services, latestCache);
  registerIngestRoutes(app, services, ingestSettings(process.env, services.config.bodyLimit), {
    written: (sensorIds) => latestCache.invalidate(sensorIds),
  });

  // The job runs in the background, never in the way of start-up or requests: until a month's
  // partition exists its readings simply land in the default partition (and move later).
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopping = false;
  const maintain = () => {
    running ??= maintainReadingPartitions(services.db, new Date(), DEFAULT_PARTITION_POLICY, () => stopping)
      .then((result) => {
        if (result.created.length > 0 || result.split.length > 0) app.log.info(result, 'readings partitions created');
      })
      .catch((error: unknown) => {
        if (!stopping) app.log.warn({ err: error }, 'readings partition maintenance failed; will retry');
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  app.addHook('onReady', async () => {
    void maintain();
    timer = setInterval(() => void maintain(), PARTITION_MAINTENANCE_INTERVAL_MS);
    timer.unref();
  });
  app.addHook('onClose', async () => {
    stopping = true;
    if (timer) clearInterval(timer);
    // Let the month in progress finish (its transaction) before the database closes.
    await running;
  });
}
