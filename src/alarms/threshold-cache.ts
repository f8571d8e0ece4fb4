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

  constructor(private readonly db: Db) {}

  async bySensor(organizationId: string): Promise<Map<string, ActiveThreshold[]>> {
    const now = Date.now();
    let entry = this.entries.get(organizationId);
    if (!entry || entry.until < now) {
      if (this.entries.size > 10_000) this.entries.clear();
      const bySensor = new Map<string, ActiveThreshold[]>();
      for (const threshold of await enabledThresholds(this.db, organizationId)) {
        const list = bySensor.get(threshold.sensorId);
        if (list) list.push(threshold);
        else bySensor.set(threshold.sensorId, [threshold]);
      }
      entry = { bySensor, until: now + CACHE_MS };
      this.entries.set(organizationId, entry);
    }
    return entry.bySensor;
  }

  forget(organizationId: string): void {
    this.entries.delete(organizationId);
  }
}
