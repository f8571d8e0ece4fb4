import type { Job } from '../jobs/runner.js';
import { purgeExpiredBrowserSessions } from '../identity/sessions.repo.js';
import type { OAuthRuntime } from './runtime.js';
import { purgeRetiredKeys } from './tokens/signing-keys.repo.js';
import { purgeExpired } from './tokens/tokens.repo.js';

/**
 * The periodic purge of the token tables (expired tokens and codes, finished grants, retired
 * signing keys no longer published), of expired browser sessions and abuse counters, and of
 * the in-process caches, so nothing grows without bound. The deletes are idempotent; the job
 * runner still runs it on one node at a time.
 */
export async function purgeOnce(rt: OAuthRuntime): Promise<void> {
  const counts = await purgeExpired(rt.db);
  await purgeRetiredKeys(rt.db);
  await purgeExpiredBrowserSessions(rt.db);
  await rt.abuse.purge();
  rt.clientAuth.prune();
  return void counts;
}

/** The purge as a job of the server's runner (jobs/runner.ts): one node at a time, every OAUTH_PURGE_INTERVAL. */
export function purgeJob(rt: OAuthRuntime): Job {
  return { name: 'oauth-purge', intervalMs: rt.settings.purgeIntervalMs, run: () => purgeOnce(rt) };
}
