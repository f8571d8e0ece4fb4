import type { Db } from '../storage/database.js';
import { OrganizationCache } from '../storage/organization-cache.js';
import { type ActiveThreshold, enabledThresholds } from './thresholds.repo.js';

/**
 * The enabled thresholds of each organization by sensor, for the ingest stage, dropped on this
 * node at every change. An organization without thresholds costs its batches nothing (the stage
 * does not apply).
 */
export class ThresholdCache {
  private readonly cache: OrganizationCache<Map<string, ActiveThreshold[]>>;

  constructor(
    private readonly db: Db,
    lifetimeMs?: number,
  ) {
    this.cache = new OrganizationCache(async (db, organizationId) => {
      const bySensor = new Map<string, ActiveThreshold[]>();
      for (const threshold of await enabledThresholds(db, organizationId)) {
        const list = bySensor.get(threshold.sensorId);
        if (list) list.push(threshold);
        else bySensor.set(threshold.sensorId, [threshold]);
      }
      return bySensor;
    }, lifetimeMs);
  }

  /** `db`: the batch's transaction inside a stage's `run` (storage/organization-cache.ts says why). */
  bySensor(organizationId: string, db: Db = this.db): Promise<Map<string, ActiveThreshold[]>> {
    return this.cache.get(db, organizationId);
  }

  forget(organizationId: string): void {
    this.cache.forget(organizationId);
  }
}
