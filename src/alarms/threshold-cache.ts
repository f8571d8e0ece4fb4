import type { Db } from '../storage/database.js';
import { type ActiveThreshold, enabledThresholds } from './thresholds.repo.js';

/** How long an organization's thresholds are remembered (changes on another node show within it). */
const CACHE_MS = 1_000;

/**
 * The enabled thresholds of each organization by sensor, for the ingest stage: one query per
 * organization per second at most, dropped on this node at every change. An organization
 * without thresholds costs its batches nothing (the stage does not apply).
 */
export class ThresholdCache {
  private readonly entries = new Map<string, { bySensor: Map<string, ActiveThreshold[]>; until: number }>();

  constructor(
    private readonly db: Db,
    private readonly lifetimeMs = CACHE_MS,
  ) {}

  /**
   * `db`: the transaction the caller is in, if any. It must be passed: on the embedded database
   * there is one connection, which the transaction holds, so a refresh through the pool would wait
   * for the transaction that waits for it (an ingest batch hung exactly so when its entry expired
   * between the stage's `appliesTo` and its `run`).
   */
  async bySensor(organizationId: string, db: Db = this.db): Promise<Map<string, ActiveThreshold[]>> {
    const now = Date.now();
    let entry = this.entries.get(organizationId);
    if (!entry || entry.until < now) {
      if (this.entries.size > 10_000) this.entries.clear();
      const bySensor = new Map<string, ActiveThreshold[]>();
      for (const threshold of await enabledThresholds(db, organizationId)) {
        const list = bySensor.get(threshold.sensorId);
        if (list) list.push(threshold);
        else bySensor.set(threshold.sensorId, [threshold]);
      }
      entry = { bySensor, until: now + this.lifetimeMs };
      this.entries.set(organizationId, entry);
    }
    return entry.bySensor;
  }

  forget(organizationId: string): void {
    this.entries.delete(organizationId);
  }
}
