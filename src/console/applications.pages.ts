import type { FastifyReply } from 'fastify';
import {
  ACCESS_TOKEN_TTL_BOUNDS,
  APPLICATION_LIMITS,
  type ApplicationChanges,
  ApplicationRefusal,
  ApplicationService,
  DEFAULT_GRANT_TYPES,
  REFRESH_TOKEN_TTL_BOUNDS,
  describeIssue,
  organizationRegistrar,
} from '../applications/applications.service.js';
import { parseSort } from '../api/list-query.js';
import { SCOPES } from '../identity/scopes.js';
import { type ClientIssue, ORGANIZATION_GRANT_TYPES } from '../oauth/client-rules.js';
import { CLIENT_SORTS, type ClientView, DEFAULT_ACCESS_TOKEN_TTL, findClient, listClients } from '../oauth/clients.repo.js';
import { TOKEN_FORMATS, type TokenFormat } from '../oauth/grant-types.js';
import type { ConsoleCaller } from './console-caller.js';
import { type ConsoleKit, type Form, forbidden, formList, formText } from './kit.js';

const PATH = '/console/developer/applications';

/** The create and edit form as typed (strings), so a refused form comes back as it was. */
interface ApplicationForm {
  name: string;
  redirect_uris: string;
  scopes: string[];
  grant_types: string[];
  privacy_policy_url: string;
  public: boolean;
  token_format: string;
  access_token_ttl: string;
  refresh_token_ttl: string;
  enabled: boolean;
}

type Errors = Record<string, string>;

const blankForm = (): ApplicationForm => ({
  name: '',
  redirect_uris: '',
  scopes: [],
  grant_types: [...DEFAULT_GRANT_TYPES],
  privacy_policy_url: '',
  public: false,
  token_format: 'opaque',
  access_token_ttl: String(DEFAULT_ACCESS_TOKEN_TTL),
  refresh_token_ttl: '',
  enabled: true,
});

const formOf = (client: ClientView): ApplicationForm => ({
  name: client.name,
  redirect_uris: client.redirect_uris.join('\n'),
  scopes: client.scopes,
  grant_types: client.grant_types,
  privacy_policy_url: client.privacy_policy_url ?? '',
  public: client.public,
  token_format: client.token_format,
  access_token_ttl: String(client.access_token_ttl),
  refresh_token_ttl: client.refresh_token_ttl === null ? '' : String(client.refresh_token_ttl),
  enabled: client.enabled,
});

const readForm = (body: Form): ApplicationForm => ({
  name: formText(body.name),
  redirect_uris: formText(body.redirect_uris),
  scopes: formList(body.scopes),
  grant_types: formList(body.grant_types),
  privacy_policy_url: formText(body.privacy_policy_url),
  public: body.public === 'on',
  token_format: formText(body.token_format),
  access_token_ttl: formText(body.access_token_ttl),
  refresh_token_ttl: formText(body.refresh_token_ttl),
  enabled: body.enabled === 'on',
});

/** Seconds within bounds, or the message for the field; '' is `empty` (the server's default). */
function seconds(value: string, bounds: { minimum: number; maximum: number }, empty: number | null): number | null | string {
  if (value === '') return empty ?? null;
  const n = Number(value);
  return Number.isInteger(n) && n >= bounds.minimum && n <= bounds.maximum
    ? n
    : `whole seconds from ${bounds.minimum} to ${bounds.maximum}`;
}

/**
 * The form as the service's changes, refused (422, field by field) where the API's request schema
 * would refuse it before its service (lengths, lifetimes, token format); the rest is the service's
 * to judge.
 */
function changesOf(form: ApplicationForm): Required<Omit<ApplicationChanges, 'enabled'>> {
  const issues: ClientIssue[] = [];
  const refuse = (field: string, message: string) => issues.push({ path: [field], message });
  const redirectUris = form.redirect_uris.split(/\s+/).filter(Boolean);
  const { name, redirectUris: uris, url } = APPLICATION_LIMITS;
  if (form.name.length > name) refuse('name', `at most ${name} characters`);
  if (redirectUris.length > uris || redirectUris.some((uri) => uri.length > url))
    refuse('redirect_uris', `at most ${uris} redirect URIs of at most ${url} characters each`);
  if (form.privacy_policy_url.length > url) refuse('privacy_policy_url', `at most ${url} characters`);
  const access = seconds(form.access_token_ttl, ACCESS_TOKEN_TTL_BOUNDS, DEFAULT_ACCESS_TOKEN_TTL);
  const refresh = seconds(form.refresh_token_ttl, REFRESH_TOKEN_TTL_BOUNDS, null);
  if (typeof access === 'string') refuse('access_token_ttl', access);
  if (typeof refresh === 'string') refuse('refresh_token_ttl', refresh);
  if (!(TOKEN_FORMATS as readonly string[]).includes(form.token_format)) refuse('token_format', 'choose opaque or JWT');
  if (issues.length > 0) throw new ApplicationRefusal(422, issues.map(describeIssue).join('; '), issues);
  return {
    name: form.name,
    redirect_uris: redirectUris,
    scopes: form.scopes,
    grant_types: form.grant_types,
    privacy_policy_url: form.privacy_policy_url || null,
    token_format: form.token_format as TokenFormat,
    access_token_ttl: access as number,
    refresh_token_ttl: refresh as number | null,
  };
}

/** A refusal of the service as messages beside the fields it names (a 403 is about scopes, a 409 about the whole form). */
function refusalErrors(error: ApplicationRefusal): Errors {
  if (error.status === 403) return { scopes: error.message };
  if (error.issues.length === 0) return { form: error.message };
  const errors: Errors = {};
  for (const issue of error.issues) {
    const field = String(issue.path[0]);
    errors[field] = errors[field] ? `${errors[field]}; ${describeIssue(issue)}` : describeIssue(issue);
  }
  return errors;
}

/**
 * Developer settings, OAuth applications tab (Bluesonde's "Create an OAuth Application"): the
 * organization's applications, a registration form whose refusals show beside their fields, the
 * client secret shown once, an application's page to edit it, rotate its secret or delete it
 * (both behind a confirmation). Everything goes through the applications service with the
 * person's role scopes, as `/v1/applications` does; registrations owned by the provisioning file or
 * the server are shown read-only.
 */
export function registerApplicationPages(kit: ConsoleKit): void {
  const { db, bearer, oauth } = kit.services;
  const applications = new ApplicationService(db, { bearer, clientAuth: oauth.clientAuth });

  const choices = (caller: ConsoleCaller) => ({
    scopes: SCOPES.filter((s) => caller.can(s)),
    grantTypes: ORGANIZATION_GRANT_TYPES,
    tokenFormats: TOKEN_FORMATS,
    limits: APPLICATION_LIMITS,
  });

  const showList = async (
    caller: ConsoleCaller,
    reply: FastifyReply,
    extra: { form?: ApplicationForm; errors?: Errors; created?: { client: ClientView; secret: string | undefined }; notice?: string } = {},
    status = 200,
  ) => {
    const page = await listClients(db, caller.organizationId, {}, parseSort('-created_at', CLIENT_SORTS, '-created_at'), {
      limit: 200,
      after: undefined,
    });
    return kit.render(
      reply,
      caller,
      'applications',
      {
        title: 'OAuth applications',
        applications: page.items,
        form: extra.form ?? blankForm(),
        errors: extra.errors ?? {},
        created: extra.created,
        notice: extra.notice,
        ...choices(caller),
      },
      status,
    );
  };

  const showApplication = async (
    caller: ConsoleCaller,
    reply: FastifyReply,
    id: string,
    extra: { form?: ApplicationForm; errors?: Errors; secret?: string; notice?: string } = {},
    status = 200,
  ) => {
    const client = await findClient(db, caller.organizationId, id);
    if (!client) return kit.render(reply, caller, 'message', { title: 'Not found', message: 'That application does not exist.' }, 404);
    return kit.render(
      reply,
      caller,
      'application',
      {
        title: client.name,
        application: client,
        form: extra.form ?? formOf(client),
        errors: extra.errors ?? {},
        secret: extra.secret,
        notice: extra.notice,
        ...choices(caller),
      },
      status,
    );
  };

  /**
   * A form posted to the service: `run` acts and `answer` shows what it did; a refusal (the form's
   * own checks or the service's) is shown beside its fields on the list (`:id`-less paths) or the
   * application's page, with what was typed when the form is the registration's (`keepsForm`).
   */
  const post = <T>(
    path: string,
    keepsForm: boolean,
    run: (caller: ConsoleCaller, body: Form, id: string) => Promise<T>,
    answer: (caller: ConsoleCaller, reply: FastifyReply, done: T, id: string) => unknown,
  ) =>
    kit.page(
      path,
      async (caller, request, reply) => {
        if (!caller.can('applications:write')) return forbidden(kit, caller, reply, 'applications:write');
        const body = request.body as Form;
        const id = (request.params as { id?: string }).id;
        let done: T;
        try {
          done = await run(caller, body, id ?? '');
        } catch (error) {
          if (!(error instanceof ApplicationRefusal)) throw error;
          const shown = { form: keepsForm ? readForm(body) : undefined, errors: refusalErrors(error) };
          return id === undefined ? showList(caller, reply, shown, error.status) : showApplication(caller, reply, id, shown, error.status);
        }
        return answer(caller, reply, done, id ?? '');
      },
      'POST',
    );

  kit.page(PATH, async (caller, request, reply) => {
    if (!caller.can('applications:write')) return forbidden(kit, caller, reply, 'applications:write');
    const deleted = (request.query as Form).deleted === '1';
    return showList(caller, reply, { notice: deleted ? 'The application has been deleted; its tokens stopped working.' : undefined });
  });

  post(
    PATH,
    true,
    (caller, body) => {
      const form = readForm(body);
      const changes = changesOf(form);
      return applications.create(
        {
          name: changes.name,
          public: form.public,
          grantTypes: changes.grant_types,
          scopes: changes.scopes,
          redirectUris: changes.redirect_uris,
          privacyPolicyUrl: changes.privacy_policy_url,
          tokenFormat: changes.token_format,
          accessTokenTtl: changes.access_token_ttl,
          refreshTokenTtl: changes.refresh_token_ttl,
        },
        organizationRegistrar(caller),
      );
    },
    (caller, reply, created) => {
      reply.header('cache-control', 'no-store');
      return showList(caller, reply, { created }, 201);
    },
  );

  kit.page(`${PATH}/:id`, async (caller, request, reply) => {
    if (!caller.can('applications:write')) return forbidden(kit, caller, reply, 'applications:write');
    const updated = (request.query as Form).updated === '1';
    return showApplication(caller, reply, (request.params as { id: string }).id, {
      notice: updated ? 'Saved. New scopes and lifetimes apply to tokens issued from now on.' : undefined,
    });
  });

  post(
    `${PATH}/:id`,
    true,
    (caller, body, id) => {
      const form = readForm(body);
      return applications.update(id, { ...changesOf(form), enabled: form.enabled }, organizationRegistrar(caller));
    },
    (caller, reply, updated, id) => (updated ? reply.redirect(`${PATH}/${id}?updated=1`, 303) : showApplication(caller, reply, id)),
  );

  post(
    `${PATH}/:id/rotate-secret`,
    false,
    (caller, _body, id) => applications.rotateSecret(id, organizationRegistrar(caller)),
    (caller, reply, rotated, id) => {
      reply.header('cache-control', 'no-store');
      return showApplication(caller, reply, id, { secret: rotated?.secret });
    },
  );

  post(
    `${PATH}/:id/delete`,
    false,
    (caller, _body, id) => applications.remove(id, organizationRegistrar(caller)),
    (caller, reply, removed, id) => (removed ? reply.redirect(`${PATH}?deleted=1`, 303) : showApplication(caller, reply, id)),
  );
}
