import { Type } from 'typebox';
import { html, page } from '../web/html.js';
import type { App } from '../server/context.js';
import type { AppServices } from '../server/context.js';
import { isSetupTokenValid } from './setup-tokens.repo.js';
import {
  type FirstOrganizationInput,
  type SetupFieldErrors,
  SetupUnavailableError,
  createFirstOrganization,
  validateFirstOrganization,
} from './setup.service.js';

const FIELDS: { key: keyof FirstOrganizationInput; name: string; label: string; type: string; autocomplete: string }[] = [
  { key: 'organizationName', name: 'organization_name', label: 'Organization name', type: 'text', autocomplete: 'organization' },
  { key: 'organizationSlug', name: 'organization_slug', label: 'Organization slug (used in URLs)', type: 'text', autocomplete: 'off' },
  { key: 'name', name: 'name', label: 'Your name', type: 'text', autocomplete: 'name' },
  { key: 'email', name: 'email', label: 'Email', type: 'email', autocomplete: 'email' },
  { key: 'password', name: 'password', label: 'Password (at least 10 characters)', type: 'password', autocomplete: 'new-password' },
];

function setupForm(token: string, values: Partial<FirstOrganizationInput>, errors: SetupFieldErrors): string {
  return page(
    'Set up sensorcloud',
    html`<h1>Set up sensorcloud</h1>
<p class="hint">Create the first organization and its owner account.</p>
<form method="post" action="/setup">
<input type="hidden" name="token" value="${token}">
${FIELDS.map(
  (f) => html`<label for="${f.name}">${f.label}</label>
<input id="${f.name}" name="${f.name}" type="${f.type}" autocomplete="${f.autocomplete}" ${f.key === 'name' ? '' : 'required'} value="${f.type === 'password' ? '' : (values[f.key] ?? '')}">
${errors[f.key] ? html`<p class="error" role="alert">${f.label.split(' (')[0]} ${errors[f.key]}</p>` : ''}`,
)}
<button type="submit">Create organization</button>
</form>`,
  );
}

const unavailablePage = (detail: string) =>
  page(
    'Setup unavailable',
    html`<h1>Setup unavailable</h1><p class="error" role="alert">${detail}</p><p class="hint">Run <code>sensorcloud setup</code> on the server for a new link.</p>`,
  );

const SetupForm = Type.Object({
  token: Type.String({ maxLength: 200 }),
  organization_name: Type.String({ maxLength: 1000 }),
  organization_slug: Type.String({ maxLength: 1000 }),
  name: Type.Optional(Type.String({ maxLength: 1000 })),
  email: Type.String({ maxLength: 1000 }),
  password: Type.String({ maxLength: 2000 }),
});

export function registerSetupRoutes(app: App, ctx: AppServices): void {
  app.get(
    '/setup',
    { schema: { hide: true, querystring: Type.Object({ token: Type.Optional(Type.String({ maxLength: 200 })) }) } },
    async (request, reply) => {
      const token = request.query.token ?? '';
      reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').header('referrer-policy', 'no-referrer');
      if (!token || !(await isSetupTokenValid(ctx.db, token))) {
        return reply.code(404).send(unavailablePage('This setup link is invalid or has already been used.'));
      }
      return setupForm(token, {}, {});
    },
  );

  app.post('/setup', { schema: { hide: true, body: SetupForm } }, async (request, reply) => {
    const body = request.body;
    const input: FirstOrganizationInput = {
      organizationName: body.organization_name,
      organizationSlug: body.organization_slug.trim().toLowerCase(),
      email: body.email.trim(),
      password: body.password,
      name: body.name?.trim() || undefined,
    };
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-store');
    const errors = validateFirstOrganization(input);
    if (Object.keys(errors).length > 0) return reply.code(400).send(setupForm(body.token, input, errors));
    try {
      const { organization, owner } = await createFirstOrganization(ctx.db, input, body.token);
      request.log.info({ organization_id: organization.id, user_id: owner.id }, 'first organization created');
      return reply.code(201).send(
        page(
          'sensorcloud is ready',
          html`<h1>sensorcloud is ready</h1><p>Organization <strong>${organization.name}</strong> (<code>${organization.slug}</code>) was created with <strong>${owner.email}</strong> as its owner.</p>
<h2>Next steps</h2>
<ul>
<li><a href="/login?return_to=%2Fconsole" id="sign-in">Sign in to the console</a></li>
<li><a href="/login?return_to=%2Fconsole%2Fdeveloper%2Fapi-keys">Create your first API key</a></li>
<li><a href="/docs">Read the API documentation</a></li>
</ul>`,
        ),
      );
    } catch (error) {
      if (error instanceof SetupUnavailableError) return reply.code(409).send(unavailablePage(error.message));
      throw error;
    }
  });
}
