import { Type } from 'typebox';
import { ping } from '../storage/database.js';
import type { Module } from '../module.js';
import type { App } from '../server/context.js';
import type { AppServices } from '../server/context.js';
import { HttpProblem } from './problem.js';

const Status = Type.Object({ status: Type.String() });

/** Liveness (the process answers) and readiness (and its database does). */
export function registerHealthRoutes(app: App, ctx: AppServices): void {
  app.get('/healthz', { schema: { tags: ['operations'], summary: 'Liveness', response: { 200: Status } } }, async () => ({ status: 'ok' }));

  app.get(
    '/readyz',
    { schema: { tags: ['operations'], summary: 'Readiness: the database answers', response: { 200: Status } } },
    async () => {
      try {
        await ping(ctx.db);
      } catch (error) {
        app.log.warn({ err: error }, 'readiness check failed');
        throw new HttpProblem({ status: 503, detail: 'The database is not reachable.', headers: { 'retry-after': '5' } });
      }
      return { status: 'ok' };
    },
  );
}

export const healthModule: Module = { name: 'health', register: registerHealthRoutes };
