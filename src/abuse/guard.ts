import { hash } from 'node:crypto';
import { type AbusePolicies, type FailurePolicy, delayAfter } from './policies.js';
import type { CounterState, CounterStore } from './store.js';

/**
 * Brute-force and abuse protection for every credential check, shared by all nodes through a
 * CounterStore (PostgreSQL, or Redis). Two budgets are kept per attempt:
 *
 * - per credential *and* source (an account's password, a client's secret, from one address):
 *   the guessing limit. Keyed by the pair, so an attacker's failures from one address never lock
 *   the owner out from another;
 * - per source (one address, an IPv6 /64): a budget of failures on each kind of door, so one
 *   address cannot spend the server's argon2id time (or bearer lookups) without bound, known
 *   accounts or not. A credential that succeeded from that address before (a known-good mark,
 *   kept `knownGoodMs`) is not held back by it: colleagues behind one NAT keep signing in while
 *   a guesser among them is refused.
 *
 * `check` reads the store before an expensive check (argon2id follows); `checkLocal` uses only
 * this node's mirror of blocks it has seen, for paths that must not pay a round trip (a cached
 * client secret, a bearer credential not in the cache). A block recorded on another node reaches
 * this node's mirror with its next store read or failure here.
 */

export type Door = 'password' | 'client' | 'external-token' | 'bearer' | 'user-code';

export interface Attempt {
  door: Door;
  /** sourceOf(request.ip). */
  source: string;
  /** The account (normalized email) or client (its pk) tried, when the door has one. */
  credential?: string;
}

export type Refusal = Extract<Verdict, { allowed: false }>;

/** `refused`: not checked (a budget is spent); `failed`: checked and wrong (counted); else the value. */
export type AttemptResult<T> = { refused: Refusal } | { failed: true } | { value: T };

export type Verdict =
  | { allowed: true; ticket: Ticket }
  | { allowed: false; scope: 'credential' | 'source'; retryAfterSeconds: number; policy: FailurePolicy };

/** What `check` learned, handed back to `failure`/`success` so they write only what changed. */
export interface Ticket {
  keys: Keys;
  /** The pair had failures to clear on success. */
  pairFailed: boolean;
  /** The pair is marked known-good. */
  marked: boolean;
  /** The pair's known-good mark is fresh (less than a day old): no need to set it again. */
  markFresh: boolean;
}

interface Keys {
  source: string;
  sourcePolicy: FailurePolicy;
  pair?: string;
  pairPolicy?: FailurePolicy;
  mark?: string;
}

const MIRROR_MAX = 100_000;
/** argon2id checks one source may have running at once on a node, and waiting behind those. */
const MAX_RUNNING = 4;
const MAX_QUEUED = 64;
const DAY = 86_400_000;

const digest = (key: string) => hash('sha256', key, 'base64url');

export class AbuseGuard {
  /** Key digest → local time until which it is blocked (this node's view). */
  private readonly blocked = new Map<string, number>();
  /** Source key digest → expensive checks running now and waiting (attempt()). */
  private readonly slots = new Map<string, { running: number; queued: (() => void)[] }>();

  constructor(
    private readonly store: CounterStore,
    readonly policies: AbusePolicies,
    private readonly now: () => number = Date.now,
  ) {}

  private keysOf(attempt: Attempt): Keys {
    const { door, source, credential } = attempt;
    const p = this.policies;
    switch (door) {
      case 'password':
      case 'client': {
        const pair = credential === undefined ? undefined : digest(`${door}\u0000${credential}\u0000${source}`);
        return {
          source: digest(`argon2\u0000${source}`),
          sourcePolicy: p.source,
          ...(pair && {
            pair,
            pairPolicy: door === 'password' ? p.password : p.client,
            mark: digest(`ok\u0000${door}\u0000${credential}\u0000${source}`),
          }),
        };
      }
      case 'external-token':
        return { source: digest(`argon2\u0000${source}`), sourcePolicy: p.source };
      case 'bearer':
        return { source: digest(`bearer\u0000${source}`), sourcePolicy: p.bearer };
      case 'user-code':
        return { source: digest(`user-code\u0000${source}`), sourcePolicy: p.userCode };
    }
  }

  /** Before an expensive check: may this attempt go ahead? One store read. */
  async check(attempt: Attempt): Promise<Verdict> {
    const keys = this.keysOf(attempt);
    const states = await this.store.read([keys.source, ...(keys.pair ? [keys.pair, keys.mark!] : [])]);
    const sourceWait = this.remember(keys.source, keys.sourcePolicy, states.get(keys.source));
    const pairWait = keys.pair ? this.remember(keys.pair, keys.pairPolicy!, states.get(keys.pair)) : 0;
    const mark = keys.mark ? states.get(keys.mark) : undefined;
    const refused = this.refusal(keys, sourceWait, pairWait, mark !== undefined);
    if (refused) return refused;
    const pairFailed = keys.pair !== undefined && (states.get(keys.pair)?.failures ?? 0) > 0;
    return { allowed: true, ticket: { keys, pairFailed, marked: mark !== undefined, markFresh: mark !== undefined && mark.ageMs < DAY } };
  }

  /**
   * The same decision from this node's mirror alone (no round trip): the refusal, or undefined.
   * `knownGood`: the credential itself was verified before (a cached secret), which exempts it
   * from the source budget.
   */
  checkLocal(attempt: Attempt, knownGood = false): Refusal | undefined {
    // The common case, nothing blocked on this node, costs no hashing.
    if (this.blocked.size === 0) return undefined;
    const keys = this.keysOf(attempt);
    const now = this.now();
    const wait = (key: string | undefined) => Math.max(0, (key === undefined ? 0 : (this.blocked.get(key) ?? 0)) - now);
    return this.refusal(keys, wait(keys.source), wait(keys.pair), knownGood);
  }

  private refusal(keys: Keys, sourceWait: number, pairWait: number, knownGood: boolean): Refusal | undefined {
    if (pairWait > 0) return { allowed: false, scope: 'credential', retryAfterSeconds: seconds(pairWait), policy: keys.pairPolicy! };
    if (sourceWait > 0 && !knownGood)
      return { allowed: false, scope: 'source', retryAfterSeconds: seconds(sourceWait), policy: keys.sourcePolicy };
    return undefined;
  }

  /**
   * Runs an expensive credential check under the guard: refused before `verify` runs when a
   * budget is spent. Each source runs at most MAX_RUNNING checks at once on a node and queues
   * MAX_QUEUED more (refused beyond): failures are only counted once they finish, so a burst of
   * parallel guesses would otherwise all get through, and one address would take every argon2id
   * thread. `verify` resolves the checked value, or undefined when the credential is wrong; the
   * outcome is counted.
   */
  async attempt<T>(attempt: Attempt, verify: () => Promise<T | undefined>): Promise<AttemptResult<T>> {
    const verdict = await this.check(attempt);
    if (!verdict.allowed) return { refused: verdict };
    const { keys } = verdict.ticket;
    if (!(await this.acquire(keys.source)))
      return { refused: { allowed: false, scope: 'source', retryAfterSeconds: 1, policy: keys.sourcePolicy } };
    // While it queued, the checks ahead of it may have spent the budget.
    const refusedNow = this.checkLocal(attempt, verdict.ticket.marked);
    if (refusedNow) {
      this.release(keys.source);
      return { refused: refusedNow };
    }
    try {
      const value = await verify();
      // Counted before the slot passes on, so the next in the queue sees this outcome.
      if (value === undefined) {
        await this.failure(verdict.ticket);
        return { failed: true };
      }
      await this.success(verdict.ticket);
      return { value };
    } finally {
      this.release(keys.source);
    }
  }

  private async acquire(source: string): Promise<boolean> {
    let slot = this.slots.get(source);
    if (!slot) {
      slot = { running: 0, queued: [] };
      this.slots.set(source, slot);
    }
    if (slot.running < MAX_RUNNING) {
      slot.running += 1;
      return true;
    }
    if (slot.queued.length >= MAX_QUEUED) return false;
    // release() hands its slot over directly, so `running` stays counted.
    await new Promise<void>((resolve) => slot.queued.push(resolve));
    return true;
  }

  private release(source: string): void {
    const slot = this.slots.get(source);
    if (!slot) return;
    const next = slot.queued.shift();
    if (next) {
      next();
      return;
    }
    slot.running -= 1;
    if (slot.running === 0) this.slots.delete(source);
  }

  /** The attempt failed: counts it for the source and the pair. One store write. */
  async failure(ticket: Ticket | Attempt): Promise<void> {
    const keys = 'keys' in ticket ? ticket.keys : this.keysOf(ticket);
    const counted = [{ key: keys.source, policy: keys.sourcePolicy }, ...(keys.pair ? [{ key: keys.pair, policy: keys.pairPolicy! }] : [])];
    const counts = await this.store.fail(counted.map(({ key, policy }) => ({ key, forgetAfterMs: policy.forgetAfterMs })));
    for (const { key, policy } of counted) this.remember(key, policy, { failures: counts.get(key) ?? 0, ageMs: 0 });
  }

  /** The attempt succeeded: the pair's failures are forgotten and it is marked known-good (written only when that changes anything). */
  private async success(ticket: Ticket): Promise<void> {
    const { keys } = ticket;
    if (!keys.pair) return;
    const clear = ticket.pairFailed ? [keys.pair] : [];
    const marks = ticket.markFresh ? [] : [keys.mark!];
    this.blocked.delete(keys.pair);
    if (clear.length + marks.length > 0) await this.store.succeed(clear, marks, this.policies.knownGoodMs);
  }

  /** Mirrors a counter's block locally; returns the wait in ms (0 when not blocked). */
  private remember(key: string, policy: FailurePolicy, state: CounterState | undefined): number {
    const wait = state ? delayAfter(policy, state.failures) - state.ageMs : 0;
    if (wait <= 0) {
      this.blocked.delete(key);
      return 0;
    }
    this.blocked.delete(key); // re-inserted last: Map order is the eviction order
    if (this.blocked.size >= MIRROR_MAX) this.blocked.delete(this.blocked.keys().next().value as string);
    this.blocked.set(key, this.now() + wait);
    return wait;
  }

  /** Drops expired mirror entries and the store's expired rows (the purge job). */
  async purge(): Promise<void> {
    const now = this.now();
    for (const [key, until] of this.blocked) if (until <= now) this.blocked.delete(key);
    await this.store.purge();
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

const seconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));
