import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Scope } from '../identity/scopes.js';
import { pageHeaders } from '../oauth/authorize/pages.js';
import type { AppServices } from '../server/context.js';
import type { Sessions } from '../web/session.js';
import { type ConsoleCaller, consoleCaller } from './console-caller.js';

export const CONSOLE_PATH = '/console';

/** A console form's body (urlencoded: strings, or arrays of them for repeated names). */
export type Form = Record<string, unknown>;
/** A form field's values: none, one or several (checkboxes). */
export const formList = (value: unknown): string[] => (Array.isArray(value) ? value : value === undefined ? [] : [value]).map(String);
/** A form field as trimmed text ('' when absent). */
export const formText = (value: unknown): string => (typeof value === 'string' ? value.trim() : '');
export const ASSETS_PATH = '/console/assets/';

/** What every console page route gets: the app scope, the services and the way to answer. */
export interface ConsoleKit {
  scope: FastifyInstance;
  services: AppServices;
  sessions: Sessions;
  /** A page for the signed-in caller, or the login page's redirect back here. */
  page(
    path: string,
    handler: (caller: ConsoleCaller, request: FastifyRequest, reply: FastifyReply) => Promise<unknown>,
    method?: 'GET' | 'POST',
  ): void;
  render(reply: FastifyReply, caller: ConsoleCaller, template: string, data: Record<string, unknown>, status?: number): Promise<unknown>;
}

export function consoleKit(scope: FastifyInstance, services: AppServices, sessions: Sessions): ConsoleKit {
  const render: ConsoleKit['render'] = async (reply, caller, template, data, status = 200) =>
    pageHeaders(reply)
      .code(status)
      .view(template, { ...data, caller, assets: ASSETS_PATH });
  return {
    scope,
    services,
    sessions,
    render,
    page(routePath, handler, method = 'GET') {
      scope.route({
        method,
        url: routePath,
        schema: { hide: true },
        handler: async (request, reply) => {
          const caller = await consoleCaller(services.db, sessions, request, reply);
          if (!caller) {
            const back = method === 'GET' ? request.url : CONSOLE_PATH;
            return pageHeaders(reply).redirect(`/login?return_to=${encodeURIComponent(back)}`, 303);
          }
          if (
            method === 'POST' &&
            !sessions.verifyCsrf(caller.session, (request.body as Record<string, unknown> | undefined)?.csrf_token)
          ) {
            return render(
              reply,
              caller,
              'message',
              { title: 'Form expired', message: 'This form has expired. Go back, reload the page and try again.' },
              403,
            );
          }
          return handler(caller, request, reply);
        },
      });
    },
  };
}

export function forbidden(kit: ConsoleKit, caller: ConsoleCaller, reply: Parameters<ConsoleKit['render']>[0], scope?: Scope) {
  return kit.render(
    reply,
    caller,
    'message',
    {
      title: 'Not allowed',
      message: `Your role in ${caller.organization.name} (${caller.role}) does not allow this${scope ? ` (it needs ${scope})` : ''}. Ask an organization admin.`,
    },
    403,
  );
}
