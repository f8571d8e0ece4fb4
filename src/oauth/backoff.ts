/**
 * Failure back-off for credential checks at the token endpoint (per account for the password
 * grant, per client for client secrets). After `freeFailures` consecutive failures of a key,
 * each further attempt must wait an exponentially growing delay (base × 2^n, capped); a success
 * clears the key. A back-off, not a lockout: the owner gets in once the delay has passed, while
 * an attacker gets a handful of guesses an hour. Throttled attempts are refused before the
 * credential is checked, so a guess during the delay teaches nothing.
 *
 * In memory on each node (bounded): N nodes allow N× the guesses, which the argon2id cost of
 * every check and the per-IP rate limit keep small.
 */

export interface BackoffOptions {
  freeFailures: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Failures older than this (since the key's last failure) are forgotten. */
  forgetAfterMs: number;
  maxEntries: number;
}

interface Entry {
  failures: number;
  blockedUntil: number;
  lastFailure: number;
}

export class Backoff {
  private readonly entries = new Map<string, Entry>();

  constructor(
    readonly options: BackoffOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds to wait before `key` may be tried again, or 0. */
  retryAfter(key: string): number {
    const entry = this.entries.get(key);
    if (!entry) return 0;
    const wait = entry.blockedUntil - this.now();
    return wait > 0 ? Math.max(1, Math.ceil(wait / 1000)) : 0;
  }

  failure(key: string): void {
    const now = this.now();
    let entry = this.entries.get(key);
    if (!entry || now - entry.lastFailure > this.options.forgetAfterMs) entry = { failures: 0, blockedUntil: 0, lastFailure: now };
    entry.failures += 1;
    entry.lastFailure = now;
    const over = entry.failures - this.options.freeFailures;
    if (over >= 0) entry.blockedUntil = now + Math.min(this.options.baseDelayMs * 2 ** Math.min(over, 30), this.options.maxDelayMs);
    this.entries.delete(key); // re-insert at the end: Map order is the eviction order
    if (this.entries.size >= this.options.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(key, entry);
  }

  success(key: string): void {
    this.entries.delete(key);
  }

  /** Drops entries nobody needs any more (called by the purge job). */
  prune(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) {
      if (entry.blockedUntil <= now && now - entry.lastFailure > this.options.forgetAfterMs) this.entries.delete(key);
    }
  }
}
