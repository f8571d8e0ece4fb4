import type { FastifyInstance } from 'fastify';
import { purgeExpiredBrowserSessions } from '../identity/sessions.repo.js';
import type { OAuthRuntime } from './runtime.js';
import { purgeRetiredKeys } from './tokens/signing-keys.repo.js';
import { purgeExpired } from './tokens/tokens.repo.js';

/**
 * The periodic purge of the token tables (expired tokens and codes, finished grants, retired
 * signing keys no longer published), of expired browser sessions and abuse counters, and of
 * the in-process caches, so nothing grows without bound. Started when the server is ready, stopped
 * (and awaited) when it closes; the timer is unref'd so it never keeps a process alive. Every
 * node runs it; the deletes are idempotent, so concurrent runs only repeat each other's work.
 */
export async function purgeOnce(rt: OAuthRuntime): Promise<void> {
  const counts = await purgeExpired(rt.db);
  await purgeRetiredKeys(rt.db);
  await purgeExpiredBrowserSessions(rt.db);
  await rt.abuse.purge();
  rt.clientAuth.prune();
  return void counts;
}

export function installPurgeJob(app: FastifyInstance, rt: OAuthRuntime): void {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const run = () => {
    if (running) return;
    running = purgeOnce(rt)
      .catch((error: unknown) => app.log.warn({ err: error }, 'oauth purge failed'))
      .finally(() => {
        running = undefined;
      });
  };
  app.addHook('onReady', async () => {
    timer = setInterval(run, rt.settings.purgeIntervalMs);
    timer.unref();
  });
  app.addHook('onClose', async () => {
    clearInterval(timer);
    await running;
  });
}
