import type { Db } from './database.js';

/**
 * A value per organization, loaded from the database and remembered for `lifetimeMs` (a second by
 * default: what another node changed shows within it), dropped at once on this node by `forget`.
 * For the questions the ingest path asks before every batch (thresholds, subscriptions, rules), so
 * an organization costs at most one query per second. Bounded: past `maxEntries` it starts over.
 */
export class OrganizationCache<T> {
  private readonly entries = new Map<string, { value: T; until: number }>();

  constructor(
    private readonly load: (db: Db, organizationId: string) => Promise<T>,
    private readonly lifetimeMs = 1_000,
    private readonly maxEntries = 10_000,
  ) {}

  /**
   * `db`: the transaction the caller is in, if any. On the embedded database there is one
   * connection, which a transaction holds: a refresh through the pool would wait for the
   * transaction that waits for it.
   */
  async get(db: Db, organizationId: string): Promise<T> {
    const now = Date.now();
    const cached = this.entries.get(organizationId);
    if (cached && cached.until >= now) return cached.value;
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    const value = await this.load(db, organizationId);
    this.entries.set(organizationId, { value, until: now + this.lifetimeMs });
    return value;
  }

  forget(organizationId: string): void {
    this.entries.delete(organizationId);
  }
}
