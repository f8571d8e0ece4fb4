import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import fastifyView from '@fastify/view';
import { Eta } from 'eta';
import { usePageSecurityHeaders } from '../http/security-headers.js';
import type { Module } from '../module.js';
import { pageHeaders, sendPageError } from '../oauth/authorize/pages.js';
import { useBrowserSessions } from '../web/session.js';
import { registerAlarmPages } from './alarms.pages.js';
import { registerApiKeyPages } from './api-keys.pages.js';
import { registerApplicationPages } from './applications.pages.js';
import { registerAuditPages } from './audit.pages.js';
import { registerAuthorizedApplicationPages } from './authorized-applications.pages.js';
import { ORGANIZATION_COOKIE } from './console-caller.js';
import { ASSETS_PATH, CONSOLE_PATH, type ConsoleKit, consoleKit } from './kit.js';
import { registerEntryRoutes } from './entry.routes.js';
import { registerMemberPages } from './members.pages.js';
import { registerSensorPages } from './sensors.pages.js';

// Templates and assets stay in src/ (the build compiles only TypeScript): from src/console/ and
// from dist/console/ alike they are two levels below the package root.
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const VIEWS = path.join(packageRoot, 'src/console/views');
const ASSETS = path.join(packageRoot, 'src/console/assets');
const UPLOT = path.dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'));

/**
 * The web console at /console (server-rendered with eta through @fastify/view, progressive: every
 * action is a plain form, console.js only adds copying, live values and the chart): developer
 * settings (API keys, OAuth applications), authorized applications, the audit log, members and
 * roles, sensors and alarms, signed in with the login page's session. Pages act through the
 * same services as /v1 with the caller's role scopes; POSTs need the session's CSRF token. Also
 * `/`: the console for a browser, a JSON index of the entry points for anything else.
 */
export const consoleModule: Module = {
  name: 'console',
  async register(app, services) {
    registerEntryRoutes(app, services);
    await app.register(async (scope) => {
      usePageSecurityHeaders(scope, services.config.publicUrl);
      const sessions = await useBrowserSessions(scope, services.db, services.config.publicUrl);
      await scope.register(fastifyView, {
        engine: { eta: new Eta({ views: VIEWS, cache: true }) },
        templates: VIEWS,
        production: true,
      });
      await scope.register(fastifyStatic, {
        root: [ASSETS, UPLOT],
        prefix: ASSETS_PATH,
        // Assets change only with a release: a day of caching, revalidated by ETag afterwards.
        maxAge: '1d',
        etag: true,
        index: false,
        allowedPath: (file) => /^\/(console\.(css|js)|uPlot\.(iife\.min\.js|min\.css))$/.test(file),
        schemaHide: true,
      });
      scope.setErrorHandler((error: Error & { statusCode?: number }, request, reply) =>
        sendPageError(error, request, reply, 'console page'),
      );
      const kit = consoleKit(scope, services, sessions);
      registerOverview(kit);
      registerApiKeyPages(kit);
      registerApplicationPages(kit);
      registerAuthorizedApplicationPages(kit);
      registerAuditPages(kit);
      registerMemberPages(kit);
      registerSensorPages(kit);
      registerAlarmPages(kit);
    });
  },
};

function registerOverview(kit: ConsoleKit): void {
  kit.page(CONSOLE_PATH, async (caller, _request, reply) => kit.render(reply, caller, 'overview', { title: 'Overview' }));
  kit.page(
    `${CONSOLE_PATH}/organization`,
    async (caller, request, reply) => {
      const wanted = (request.body as Record<string, unknown>).organization_id;
      const known = caller.organizations.some((o) => o.id === wanted);
      const secure = kit.services.config.publicUrl.startsWith('https:');
      if (known) reply.setCookie(ORGANIZATION_COOKIE, wanted as string, { path: '/', httpOnly: true, sameSite: 'lax', secure });
      return pageHeaders(reply).redirect(CONSOLE_PATH, 303);
    },
    'POST',
  );
}
