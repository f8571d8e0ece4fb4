import { Redis } from 'ioredis';
import { BackingStoreUnavailable } from '../storage/availability.js';
import type { CounterState, CounterStore } from './store.js';

/**
 * The abuse counters in Redis (REDIS_URL): a hash per key (`f` failures, `t` time of the last
 * failure), expiring with the key's forget time, so Redis forgets quiet keys by itself. Each
 * operation is one Lua script, atomic across nodes, timed by the Redis server's clock. Keys are
 * `sensorcloud:<installation id>:abuse:<digest>`: installations sharing one Redis keep apart.
 */

// KEYS: counters; ARGV: forget ms per key. Returns the new counts.
const FAIL = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('HINCRBY', key, 'f', 1)
  redis.call('HSET', key, 't', now)
  redis.call('PEXPIRE', key, ARGV[i])
end
return counts`;

// KEYS: counters. Returns {failures, age ms} per key, or false for missing keys.
const READ = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'f', 't')
  if v[1] then out[i] = {tonumber(v[1]), now - tonumber(v[2])} else out[i] = false end
end
return out`;

// KEYS: counters to clear, then marks; ARGV: number to clear, mark ttl ms.
const SUCCEED = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local cleared = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if i <= cleared then redis.call('DEL', key)
  else redis.call('HSET', key, 'f', 0, 't', now); redis.call('PEXPIRE', key, ARGV[2]) end
end
return 1`;

export class RedisCounterStore implements CounterStore {
  private prefix: Promise<string> | undefined;

  private constructor(
    private readonly redis: Redis,
    private readonly namespace: () => Promise<string>,
  ) {}

  /**
   * Connects before the server starts serving, so a wrong REDIS_URL stops the start instead of every
   * login. `namespace` (the installation id) is read on first use.
   */
  static async connect(url: string, namespace: () => Promise<string>): Promise<RedisCounterStore> {
    // No offline queue: while Redis is away a command fails at once (answered 503) instead of waiting.
    const redis = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 5_000 });
    redis.on('error', () => {}); // reconnects by itself; commands meanwhile fail and are answered 503
    await redis.connect();
    return new RedisCounterStore(redis, namespace);
  }

  private async run<T>(script: string, keys: readonly string[], args: readonly (string | number)[]): Promise<T> {
    this.prefix ??= this.namespace().then((id) => `sensorcloud:${id}:abuse:`);
    const prefix = await this.prefix.catch((error: unknown) => {
      this.prefix = undefined;
      throw error;
    });
    try {
      return (await this.redis.eval(script, keys.length, ...keys.map((k) => prefix + k), ...args)) as T;
    } catch (error) {
      throw new BackingStoreUnavailable('redis', error);
    }
  }

  async read(keys: readonly string[]): Promise<Map<string, CounterState>> {
    const found = await this.run<([number, number] | null)[]>(READ, keys, []);
    const states = new Map<string, CounterState>();
    keys.forEach((key, i) => {
      const value = found[i];
      if (value) states.set(key, { failures: value[0], ageMs: value[1] });
    });
    return states;
  }

  async fail(keys: readonly { key: string; forgetAfterMs: number }[]): Promise<Map<string, number>> {
    const counts = await this.run<number[]>(
      FAIL,
      keys.map((k) => k.key),
      keys.map((k) => Math.ceil(k.forgetAfterMs)),
    );
    return new Map(keys.map((k, i) => [k.key, counts[i]!]));
  }

  async succeed(clear: readonly string[], marks: readonly string[], ttlMs: number): Promise<void> {
    if (clear.length + marks.length === 0) return;
    await this.run(SUCCEED, [...clear, ...marks], [clear.length, Math.ceil(ttlMs)]);
  }

  async purge(): Promise<void> {}

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
