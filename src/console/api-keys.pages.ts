import { listApiKeys } from '../api-keys/api-keys.repo.js';
import { API_KEY_NAME_MAX, createApiKey, revokeApiKeyNow } from '../api-keys/api-keys.service.js';
import { signedInUser } from '../audit/actor.js';
import { HttpProblem } from '../http/problem.js';
import { SCOPES } from '../identity/scopes.js';
import type { ConsoleCaller } from './console-caller.js';
import { type ConsoleKit, type Form, forbidden, formList } from './kit.js';

const PATH = '/console/developer/api-keys';

/**
 * Developer settings, API keys tab (Bluesonde's "Create an API Key"): the organization's keys,
 * a create form whose errors show beside the fields, the new key shown once in a dialog, and
 * revocation behind a confirmation. Creating and revoking go through the same service as
 * /v1/api-keys, with the person's role scopes.
 */
export function registerApiKeyPages(kit: ConsoleKit): void {
  const { db, bearer } = kit.services;

  const show = async (
    caller: ConsoleCaller,
    reply: Parameters<ConsoleKit['render']>[0],
    extra: { created?: { name: string; key: string }; errors?: Record<string, string>; form?: Form; notice?: string } = {},
    status = 200,
  ) => {
    const keys = await listApiKeys(db, caller.organization.id, { limit: 200, after: undefined, includeRevoked: false });
    return kit.render(
      reply,
      caller,
      'api-keys',
      {
        title: 'API keys',
        nameMax: API_KEY_NAME_MAX,
        keys,
        scopes: SCOPES.filter((s) => caller.can(s) && s !== 'offline_access'),
        errors: extra.errors ?? {},
        form: { name: '', scopes: [] as string[], ...(extra.form ?? {}) },
        created: extra.created,
        notice: extra.notice,
      },
      status,
    );
  };

  kit.page(PATH, async (caller, request, reply) => {
    if (!caller.can('api_keys:write')) return forbidden(kit, caller, reply);
    const revoked = (request.query as Form).revoked;
    return show(caller, reply, { notice: revoked === '1' ? 'The API key has been revoked. It stops working at once.' : undefined });
  });

  kit.page(
    PATH,
    async (caller, request, reply) => {
      if (!caller.can('api_keys:write')) return forbidden(kit, caller, reply);
      const form = request.body as Form;
      const name = typeof form.name === 'string' ? form.name : '';
      const scopes = formList(form.scopes);
      const expires = typeof form.expires_at === 'string' && form.expires_at !== '' ? new Date(`${form.expires_at}T23:59:59Z`) : undefined;
      const errors: Record<string, string> = {};
      if (name.trim() === '') errors.name = 'Give the key a name, so you can tell it apart later.';
      else if (name.trim().length > API_KEY_NAME_MAX) errors.name = `At most ${API_KEY_NAME_MAX} characters.`;
      if (scopes.length === 0) errors.scopes = 'Choose at least one scope.';
      if (expires && Number.isNaN(expires.getTime())) errors.expires_at = 'Enter a valid date.';
      if (Object.keys(errors).length > 0) return show(caller, reply, { errors, form: { name, scopes } }, 400);
      try {
        const { key, row } = await createApiKey(
          db,
          caller.principal,
          { name, scopes, expiresAt: expires },
          signedInUser(caller.user.id, caller.sourceAddress),
        );
        reply.header('cache-control', 'no-store');
        return show(caller, reply, { created: { name: row.name, key } }, 201);
      } catch (error) {
        if (!(error instanceof HttpProblem) || error.status >= 500) throw error;
        const field = error.status === 409 ? 'name' : (error.errors?.[0]?.pointer?.split('/')[2] ?? 'scopes');
        return show(caller, reply, { errors: { [field]: error.message }, form: { name, scopes } }, error.status);
      }
    },
    'POST',
  );

  kit.page(
    `${PATH}/:id/revoke`,
    async (caller, request, reply) => {
      if (!caller.can('api_keys:write')) return forbidden(kit, caller, reply);
      const { id } = request.params as { id: string };
      if (!(await revokeApiKeyNow(db, bearer, caller.organization.id, id, signedInUser(caller.user.id, caller.sourceAddress))))
        return kit.render(reply, caller, 'message', { title: 'Not found', message: 'That API key does not exist.' }, 404);
      return reply.redirect(`${PATH}?revoked=1`, 303);
    },
    'POST',
  );
}
