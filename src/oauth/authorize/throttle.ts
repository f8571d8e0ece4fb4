import { Backoff, type BackoffOptions } from '../backoff.js';

/**
 * Brute-force protection of the login form and of the device user-code form, in memory on each node.
 *
 * - Per account: the token endpoint's exponential back-off (`oauth/backoff.ts`) keyed by the
 *   normalized email (known or not, so the answer does not reveal which accounts exist).
 * - Per client IP: at most `ipLimit` failures per `ipWindowMs` (fixed window), whatever the
 *   account, so spraying one password over many accounts is bounded too.
 *
 * Throttled requests are refused (429) before the password is checked.
 */

export interface ThrottleOptions {
  /** Per-account back-off; omitted for the user-code form, which has no account. */
  account?: BackoffOptions;
  ipLimit: number;
  ipWindowMs: number;
  maxEntries: number;
}

export const LOGIN_THROTTLE: ThrottleOptions = {
  account: { freeFailures: 5, baseDelayMs: 30_000, maxDelayMs: 15 * 60_000, forgetAfterMs: 60 * 60_000, maxEntries: 100_000 },
  ipLimit: 30,
  ipWindowMs: 15 * 60_000,
  maxEntries: 100_000,
};

/** User codes are short (RFC 8628 §5.1): few wrong guesses per IP. */
export const USER_CODE_THROTTLE: ThrottleOptions = { ipLimit: 10, ipWindowMs: 15 * 60_000, maxEntries: 100_000 };

export type ThrottleVerdict =
  | { allowed: true }
  | { allowed: false; scope: 'account' | 'ip'; retryAfterSeconds: number; limit: number; windowSeconds: number };

interface Window {
  failures: number;
  endsAt: number;
}

export class Throttle {
  private readonly accounts: Backoff | undefined;
  private readonly ips = new Map<string, Window>();

  /**
   * `sharedAccounts`: the token endpoint's per-account back-off, so the login form and the password
   * grant draw on one budget of guesses per account instead of two.
   */
  constructor(
    readonly options: ThrottleOptions,
    private readonly now: () => number = Date.now,
    sharedAccounts?: Backoff,
  ) {
    this.accounts = sharedAccounts ?? (options.account ? new Backoff(options.account, now) : undefined);
  }

  check(ip: string, account?: string): ThrottleVerdict {
    const now = this.now();
    const window = this.ips.get(ip);
    if (window && window.endsAt > now && window.failures >= this.options.ipLimit) {
      return { allowed: false, scope: 'ip', retryAfterSeconds: seconds(window.endsAt - now), limit: this.options.ipLimit, windowSeconds: seconds(this.options.ipWindowMs) };
    }
    const wait = account !== undefined && this.accounts ? this.accounts.retryAfter(account) : 0;
    if (wait > 0 && this.accounts) {
      const policy = this.accounts.options;
      return { allowed: false, scope: 'account', retryAfterSeconds: wait, limit: policy.freeFailures, windowSeconds: seconds(policy.forgetAfterMs) };
    }
    return { allowed: true };
  }

  failure(ip: string, account?: string): void {
    const now = this.now();
    const window = this.ips.get(ip);
    if (window && window.endsAt > now) {
      window.failures += 1;
    } else {
      this.ips.delete(ip);
      if (this.ips.size >= this.options.maxEntries) this.ips.delete(this.ips.keys().next().value as string);
      this.ips.set(ip, { failures: 1, endsAt: now + this.options.ipWindowMs });
    }
    if (account !== undefined) this.accounts?.failure(account);
  }

  success(account?: string): void {
    if (account !== undefined) this.accounts?.success(account);
  }
}

const seconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));
