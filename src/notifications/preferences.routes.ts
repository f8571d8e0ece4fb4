import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { ResourceType } from '../api/documents.js';
import { envelopeSchema, sendResource } from '../api/documents.js';
import { jsonApiBody } from '../api/json-api-body.js';
import { Nullable, secured } from '../api/kit.js';
import { principalOf } from '../auth/guard.js';
import { HttpProblem } from '../http/problem.js';
import type { App, AppServices } from '../server/context.js';
import { html, page } from '../web/html.js';
import type { NotificationPreferences } from './notifications.schema.js';
import { findPreferences, savePreferences, turnEmailOff } from './preferences.repo.js';
import { TIME_OF_DAY, isTimeZone } from './quiet-hours.js';
import { verifyUnsubscribeToken } from './unsubscribe.js';

const PATH = '/v1/me/notification-preferences';

const PreferencesResource: ResourceType<NotificationPreferences> = {
  type: 'notification-preferences',
  id: (row) => row.user_id,
  path: () => PATH,
  attributes: (row) => ({
    email_enabled: row.email_enabled,
    quiet_hours:
      row.quiet_start && row.quiet_end && row.quiet_timezone
        ? { start: row.quiet_start, end: row.quiet_end, timezone: row.quiet_timezone }
        : null,
  }),
};

const QuietHours = Type.Object(
  {
    start: Type.String({ pattern: TIME_OF_DAY, description: 'Local time quiet hours begin, `HH:MM`.' }),
    end: Type.String({ pattern: TIME_OF_DAY, description: 'Local time they end, `HH:MM` (may be the next day).' }),
    timezone: Type.String({ minLength: 1, maxLength: 100, description: 'IANA time zone, e.g. `Europe/Berlin`.' }),
  },
  { additionalProperties: false },
);
const PreferencesJson = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email_enabled: Type.Boolean(),
  quiet_hours: Nullable(QuietHours),
  links: Type.Object({ self: Type.String({ format: 'uri' }) }),
});
const PreferencesUpdate = Type.Object(
  {
    email_enabled: Type.Optional(Type.Boolean({ description: 'Receive alarm emails at all.' })),
    quiet_hours: Type.Optional(
      Nullable({ ...QuietHours, description: 'Non-critical emails wait until quiet hours end; critical ones still go. null: none.' }),
    ),
  },
  { additionalProperties: false },
);

const unsubscribePage = (title: string, body: ReturnType<typeof html>) =>
  page(title, html`<p class="brand">sensorcloud</p><h1>${title}</h1>${body}`);

/** The caller's notification preferences, and the unsubscribe link of every email (no login). */
export function registerPreferenceRoutes(app: App, services: AppServices, unsubscribeKey: () => Buffer): void {
  const { bearer, db, config } = services;

  const userOf = (request: Parameters<typeof principalOf>[0]): string => {
    const { userId } = principalOf(request);
    if (!userId)
      throw new HttpProblem({ status: 403, detail: 'Notification preferences belong to a person; this credential acts for none.' });
    return userId;
  };

  app.get(
    PATH,
    secured(bearer, [], {
      tags: ['notifications'],
      summary: 'Your notification preferences: email on or off, quiet hours',
      response: { 200: envelopeSchema(PreferencesJson) },
    }),
    async (request, reply) =>
      sendResource(config.publicUrl, request, reply, PreferencesResource, await findPreferences(db, userOf(request))),
  );

  for (const method of ['patch', 'put'] as const) {
    app[method](
      PATH,
      {
        ...secured(bearer, [], {
          tags: ['notifications'],
          summary:
            method === 'patch' ? 'Change your notification preferences' : 'Change your notification preferences (PUT, same as PATCH)',
          body: PreferencesUpdate,
          response: { 200: envelopeSchema(PreferencesJson) },
        }),
        preValidation: jsonApiBody({ type: 'notification-preferences' }),
      },
      async (request, reply) => {
        const userId = userOf(request);
        const current = await findPreferences(db, userId);
        const { email_enabled, quiet_hours } = request.body;
        if (quiet_hours && !isTimeZone(quiet_hours.timezone)) {
          const detail = 'quiet_hours.timezone is not a known IANA time zone';
          throw new HttpProblem({ status: 422, detail, errors: [{ pointer: '/body/quiet_hours/timezone', detail }] });
        }
        const saved = await savePreferences(db, userId, {
          email_enabled: email_enabled ?? current.email_enabled,
          ...(quiet_hours === undefined
            ? { quiet_start: current.quiet_start, quiet_end: current.quiet_end, quiet_timezone: current.quiet_timezone }
            : {
                quiet_start: quiet_hours?.start ?? null,
                quiet_end: quiet_hours?.end ?? null,
                quiet_timezone: quiet_hours?.timezone ?? null,
              }),
        });
        return sendResource(config.publicUrl, request, reply, PreferencesResource, saved);
      },
    );
  }

  // A GET only shows what the link will do: mail scanners and link previews follow links, and must
  // not unsubscribe anyone. The change is a POST: the page's button, or a mail client's one-click
  // unsubscribe (RFC 8058: `List-Unsubscribe-Post`). The signed token is the credential, so the
  // form needs no session or CSRF token.
  const TokenQuery = Type.Object({ token: Type.Optional(Type.String({ maxLength: 200 })) });
  const invalidLink = () =>
    unsubscribePage(
      'Link not valid',
      html`<p>This unsubscribe link is not valid. Change your notification preferences in sensorcloud instead.</p>`,
    );
  const pageReply = (reply: FastifyReply) =>
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').header('referrer-policy', 'no-referrer');

  app.get('/notifications/unsubscribe', { schema: { hide: true, querystring: TokenQuery } }, async (request, reply) => {
    pageReply(reply);
    const token = request.query.token ?? '';
    if (!verifyUnsubscribeToken(unsubscribeKey(), token)) return reply.code(404).send(invalidLink());
    return unsubscribePage(
      'Stop alarm emails?',
      html`<p>You will no longer receive alarm emails from sensorcloud, from any organization.</p>
        <form method="post" action="/notifications/unsubscribe?token=${token}"><button type="submit">Unsubscribe</button></form>`,
    );
  });

  app.post('/notifications/unsubscribe', { schema: { hide: true, querystring: TokenQuery } }, async (request, reply) => {
    pageReply(reply);
    const userId = verifyUnsubscribeToken(unsubscribeKey(), request.query.token ?? '');
    if (!userId || !(await turnEmailOff(db, userId))) return reply.code(404).send(invalidLink());
    return unsubscribePage(
      'Unsubscribed',
      html`<p>You will no longer receive alarm emails from sensorcloud. Turn them back on in your notification preferences.</p>`,
    );
  });
}
