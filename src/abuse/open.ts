import type { Config } from '../config/config.js';
import type { Db } from '../storage/database.js';
import { installationId } from '../storage/instance.repo.js';
import { PostgresCounterStore } from './counters.repo.js';
import { AbuseGuard } from './guard.js';
import { abusePolicies } from './policies.js';
import { RedisCounterStore } from './redis-store.js';

/** The abuse guard of a server: counters in Redis when REDIS_URL is set, else in its database. */
export async function openAbuseGuard(config: Pick<Config, 'redisUrl' | 'env'>, db: Db): Promise<AbuseGuard> {
  const store = config.redisUrl ? await RedisCounterStore.connect(config.redisUrl, () => installationId(db)) : new PostgresCounterStore(db);
  return new AbuseGuard(store, abusePolicies(config.env));
}
