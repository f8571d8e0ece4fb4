import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresCounterStore } from '../../src/abuse/counters.repo.js';
import { RedisCounterStore } from '../../src/abuse/redis-store.js';
import type { CounterStore } from '../../src/abuse/store.js';
import { backends, useDatabase } from '../support/databases.js';
import { TEST_REDIS_URL } from '../support/redis.js';

/** The CounterStore contract, on every store the guard can use: the embedded database, PostgreSQL, Redis. */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function contract(open: () => CounterStore) {
  const key = () => randomBytes(8).toString('hex');

  it('counts failures per key, atomically under concurrency', async () => {
    const store = open();
    const [a, b] = [key(), key()];
    expect(
      await store.fail([
        { key: a, forgetAfterMs: 60_000 },
        { key: b, forgetAfterMs: 60_000 },
      ]),
    ).toEqual(
      new Map([
        [a, 1],
        [b, 1],
      ]),
    );
    await Promise.all(Array.from({ length: 20 }, () => store.fail([{ key: a, forgetAfterMs: 60_000 }])));
    const states = await store.read([a, b, key()]);
    expect(states.get(a)?.failures).toBe(21);
    expect(states.get(b)?.failures).toBe(1);
    expect(states.size).toBe(2);
    expect(states.get(a)!.ageMs).toBeGreaterThanOrEqual(0);
    expect(states.get(a)!.ageMs).toBeLessThan(5_000);
  });

  it('a key quiet for its forget time is gone, and counts again from one', async () => {
    const store = open();
    const a = key();
    await store.fail([{ key: a, forgetAfterMs: 300 }]);
    await store.fail([{ key: a, forgetAfterMs: 300 }]);
    await sleep(450);
    expect((await store.read([a])).has(a)).toBe(false);
    expect((await store.fail([{ key: a, forgetAfterMs: 300 }])).get(a)).toBe(1);
  });

  it('success clears counters and sets known-good marks that expire', async () => {
    const store = open();
    const [failed, mark] = [key(), key()];
    await store.fail([{ key: failed, forgetAfterMs: 60_000 }]);
    await store.succeed([failed], [mark], 400);
    const states = await store.read([failed, mark]);
    expect(states.has(failed)).toBe(false);
    expect(states.get(mark)?.failures).toBe(0);
    await sleep(550);
    await store.purge();
    expect((await store.read([mark])).has(mark)).toBe(false);
  });
}

describe.each(backends)('abuse counters in the database ($name)', (backend) => {
  const database = useDatabase(backend);
  contract(() => new PostgresCounterStore(database.db));
});

describe.skipIf(!TEST_REDIS_URL)('abuse counters in Redis', () => {
  let store: RedisCounterStore;
  const namespace = randomBytes(6).toString('hex');
  beforeAll(async () => {
    store = await RedisCounterStore.connect(TEST_REDIS_URL!, async () => namespace);
  });
  afterAll(async () => store?.close());
  contract(() => store);

  it('installations sharing one Redis do not share counters', async () => {
    const other = await RedisCounterStore.connect(TEST_REDIS_URL!, async () => `${namespace}-other`);
    try {
      await store.fail([{ key: 'shared-key', forgetAfterMs: 60_000 }]);
      expect((await other.read(['shared-key'])).has('shared-key')).toBe(false);
    } finally {
      await other.close();
    }
  });

  it('an unreachable Redis is refused at start, and a lost one makes operations fail as unavailable (answered 503)', async () => {
    await expect(RedisCounterStore.connect('redis://127.0.0.1:1', async () => 'x')).rejects.toThrow();
    const lost = await RedisCounterStore.connect(TEST_REDIS_URL!, async () => namespace);
    await lost.close();
    await expect(lost.read(['k'])).rejects.toMatchObject({ name: 'BackingStoreUnavailable' });
  });
});
