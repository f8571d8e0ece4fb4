import { describe, expect, it } from 'vitest';
import { AbuseGuard, type Attempt } from '../../src/abuse/guard.js';
import { abusePolicies, delayAfter } from '../../src/abuse/policies.js';
import { readEnvironment } from '../../src/config/env.js';
import { sourceOf } from '../../src/abuse/source.js';
import { MemoryCounterStore } from '../support/memory-counter-store.js';

/** The abuse guard's decisions on a clock the test moves (the stores themselves: stores.test.ts). */

function setup(env: Record<string, string> = {}) {
  let now = 1_000_000;
  const clock = {
    get now() {
      return now;
    },
    advance: (ms: number) => {
      now += ms;
    },
  };
  const store = new MemoryCounterStore(() => now);
  const guard = new AbuseGuard(
    store,
    abusePolicies(readEnvironment({ OAUTH_PASSWORD_FREE_FAILURES: '3', ABUSE_SOURCE_FREE_FAILURES: '5', ...env })),
    () => now,
  );
  return { clock, store, guard };
}

const login = (source: string, account = 'viewer@acme.test'): Attempt => ({ door: 'password', credential: account, source });
const wrong = async () => undefined;
const right = async () => 'ok';

describe('delays', () => {
  it('free failures cost nothing, then the wait doubles up to its cap', () => {
    const policy = { name: 'p', freeFailures: 2, baseDelayMs: 1000, maxDelayMs: 4000, forgetAfterMs: 60_000 };
    expect([1, 2, 3, 4, 5, 40].map((n) => delayAfter(policy, n))).toEqual([0, 1000, 2000, 4000, 4000, 4000]);
  });
});

describe('per credential and source', () => {
  it("an account's failures from one address hold back only that address; the owner elsewhere gets in", async () => {
    const { guard } = setup();
    for (let i = 0; i < 3; i++) expect(await guard.attempt(login('10.0.0.66'), wrong)).toEqual({ failed: true });
    const refused = await guard.attempt(login('10.0.0.66'), right);
    expect(refused).toMatchObject({ refused: { scope: 'credential', retryAfterSeconds: 2 } });
    expect(await guard.attempt(login('10.0.0.7'), right)).toEqual({ value: 'ok' });
  });

  it('the wait runs out; a success forgets the failures', async () => {
    const { guard, clock } = setup();
    for (let i = 0; i < 4; i++) await guard.attempt(login('10.0.0.66'), wrong).catch(() => undefined);
    expect(await guard.attempt(login('10.0.0.66'), right)).toHaveProperty('refused');
    clock.advance(4_001);
    expect(await guard.attempt(login('10.0.0.66'), right)).toEqual({ value: 'ok' });
    // Counting starts again from zero.
    for (let i = 0; i < 2; i++) expect(await guard.attempt(login('10.0.0.66'), wrong)).toEqual({ failed: true });
    expect(await guard.attempt(login('10.0.0.66'), right)).toEqual({ value: 'ok' });
  });

  it('a quiet hour forgets the count', async () => {
    const { guard, clock } = setup();
    for (let i = 0; i < 2; i++) await guard.attempt(login('10.0.0.66'), wrong);
    clock.advance(60 * 60_000 + 1);
    for (let i = 0; i < 2; i++) expect(await guard.attempt(login('10.0.0.66'), wrong)).toEqual({ failed: true });
  });
});

describe('per source', () => {
  it('one address spraying many accounts is refused once its budget is spent, other addresses are not', async () => {
    const { guard } = setup();
    for (let i = 0; i < 5; i++) expect(await guard.attempt(login('10.0.0.66', `guess${i}@acme.test`), wrong)).toEqual({ failed: true });
    expect(await guard.attempt(login('10.0.0.66', 'guess9@acme.test'), right)).toMatchObject({ refused: { scope: 'source' } });
    // Unknown clients count against the same budget (one argon2id budget per address).
    expect(await guard.attempt({ door: 'client', source: '10.0.0.66' }, right)).toMatchObject({ refused: { scope: 'source' } });
    expect(await guard.attempt(login('10.0.0.7', 'guess9@acme.test'), right)).toEqual({ value: 'ok' });
  });

  it('a credential that succeeded from the address before keeps working behind it (NAT)', async () => {
    const { guard } = setup();
    expect(await guard.attempt(login('192.0.2.1', 'admin@acme.test'), right)).toEqual({ value: 'ok' });
    for (let i = 0; i < 6; i++) await guard.attempt(login('192.0.2.1', `guess${i}@acme.test`), wrong);
    expect(await guard.attempt(login('192.0.2.1', 'someone-new@acme.test'), right)).toMatchObject({ refused: { scope: 'source' } });
    expect(await guard.attempt(login('192.0.2.1', 'admin@acme.test'), right)).toEqual({ value: 'ok' });
  });

  it('an IPv6 caller is one source across its /64', () => {
    expect(sourceOf('2001:db8:1:2:aaaa::1')).toBe(sourceOf('2001:db8:1:2:bbbb::2'));
    expect(sourceOf('2001:db8:1:3::1')).not.toBe(sourceOf('2001:db8:1:2::1'));
    expect(sourceOf('::ffff:192.0.2.1')).toBe('192.0.2.1');
  });
});

describe('bursts and nodes', () => {
  it('parallel checks from one source run at most four at a time, the rest queue, beyond the queue they are refused', async () => {
    const { guard } = setup({ ABUSE_SOURCE_FREE_FAILURES: '1000', OAUTH_PASSWORD_FREE_FAILURES: '1000' });
    let running = 0;
    let most = 0;
    const slow = async () => {
      most = Math.max(most, ++running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running -= 1;
      return undefined;
    };
    const results = await Promise.all(Array.from({ length: 80 }, (_, i) => guard.attempt(login('10.0.0.66', `u${i}@x`), slow)));
    expect(most).toBe(4);
    expect(results.filter((r) => 'failed' in r)).toHaveLength(68);
    expect(results.filter((r) => 'refused' in r)).toHaveLength(12);
  });

  it('checkLocal sees blocks this node learned, without a store round trip; another node learns them at its next read', async () => {
    const { guard, store, clock } = setup();
    const other = new AbuseGuard(store, guard.policies, () => clock.now);
    for (let i = 0; i < 3; i++) await guard.attempt(login('10.0.0.66'), wrong);
    const reads = store.reads;
    expect(guard.checkLocal(login('10.0.0.66'))).toMatchObject({ allowed: false, scope: 'credential' });
    expect(store.reads).toBe(reads);
    expect(other.checkLocal(login('10.0.0.66'))).toBeUndefined();
    expect(await other.check(login('10.0.0.66'))).toMatchObject({ allowed: false, scope: 'credential' });
    expect(other.checkLocal(login('10.0.0.66'))).toMatchObject({ allowed: false });
  });

  it('a success writes nothing when there is nothing to clear and the mark is fresh', async () => {
    const { guard, store } = setup();
    await guard.attempt(login('10.0.0.7'), right);
    const writes = store.writes;
    await guard.attempt(login('10.0.0.7'), right);
    expect(store.writes).toBe(writes);
  });
});
