import type { Db } from '../storage/database.js';
import { type LatestRow, latestReading } from './readings.repo.js';

/**
 * A short-lived, per-node cache of each sensor's latest reading, for the hottest read of the API
 * (dashboards polling `GET /v1/sensors/{id}/readings/latest`).
 *
 * - An entry lives at most TTL_MS, which bounds how stale a reading written through another node
 *   can look here (the same bound the bearer cache puts on revocations).
 * - Ingest on this node drops the entries of the sensors it wrote, after the commit: a client
 *   reading back through the node it wrote to sees its own write at once.
 * - The entry remembers the sensor's organization, so tenancy holds exactly as in SQL: a sensor
 *   of another organization is "not found". Unknown sensors are not cached (random ids cannot
 *   fill memory), and the map is bounded.
 */

export const LATEST_CACHE_TTL_MS = 1000;
const MAX_ENTRIES = 100_000;

interface Entry {
  organizationId: string;
  latest: LatestRow | null;
  validUntil: number;
}

export class LatestReadingCache {
  private readonly entries = new Map<string, Entry>();
  /** Bumped by every invalidation, so a read that raced with a write does not cache stale data. */
  private generation = 0;

  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
    private readonly ttlMs = LATEST_CACHE_TTL_MS,
  ) {}

  /** Like latestReading(): undefined when the sensor is not the organization's, null without readings. */
  async get(organizationId: string, sensorId: string): Promise<LatestRow | null | undefined> {
    const now = this.now();
    const entry = this.entries.get(sensorId);
    if (entry && entry.validUntil > now) return entry.organizationId === organizationId ? entry.latest : undefined;
    const generation = this.generation;
    const latest = await latestReading(this.db, organizationId, sensorId);
    if (latest === undefined) return undefined;
    if (generation === this.generation) {
      if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as string);
      this.entries.delete(sensorId);
      this.entries.set(sensorId, { organizationId, latest, validUntil: now + this.ttlMs });
    }
    return latest;
  }

  /** Forget the sensors a batch just wrote (call after the commit). */
  invalidate(sensorIds: Iterable<string>): void {
    this.generation += 1;
    for (const id of sensorIds) this.entries.delete(id);
  }

  clear(): void {
    this.generation += 1;
    this.entries.clear();
  }
}
