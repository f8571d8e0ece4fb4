import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Refusal } from '../../abuse/guard.js';
import { sourceOf } from '../../abuse/source.js';
import { recordFailedSignIn } from '../../audit/audit.repo.js';
import { usePageSecurityHeaders } from '../../http/security-headers.js';
import { findOrganizationById } from '../../identity/organizations.repo.js';
import { type ScopeToken, parseScopeParam } from '../../identity/scopes.js';
import { findMemberView } from '../../identity/members.repo.js';
import { findUserByEmail, normalizeEmail } from '../../identity/users.repo.js';
import { verifyPassword } from '../../security/passwords.js';
import type { App } from '../../server/context.js';
import type { AppServices } from '../../server/context.js';
import { isDatabaseUnavailable } from '../../storage/availability.js';
import type { Role, User } from '../../storage/schema.js';
import { findClientByClientId } from '../clients.repo.js';
import { issueAuthorizationCode } from '../codes.js';
import { decideDeviceCode, findPendingDeviceCode } from '../device-codes.js';
import { registerAuthorizedApplicationsApi } from './api.routes.js';
import { consentCovers, evaluateConsent } from './consent.js';
import { withdrawAuthorization } from './authorizations.js';
import { findConsentScopes, listAuthorizedApplications, rememberConsent } from './consents.repo.js';
import { ACCOUNT_INVITATIONS_PATH, registerInvitationPages } from './invitations.routes.js';
import {
  authorizedApplicationsPage,
  consentPage,
  deviceDonePage,
  deviceEntryPage,
  errorPage,
  formExpiredPage,
  loginPage,
  pageHeaders,
  sendPageError,
} from './pages.js';
import {
  AUTHORIZE_PARAMS,
  type AuthorizationRequest,
  type AuthorizeErrorCode,
  redirectWith,
  validateAuthorizationRequest,
} from './request.js';
import { type BrowserSession, type Sessions, useBrowserSessions } from '../../web/session.js';

/**
 * Browser-facing pages of the authorization server: `/oauth/authorize` (and Bluesonde's
 * `/oauth2/auth`), `/login`, `/logout`, `/device` (RFC 8628 verification URI),
 * `/account/authorized-applications` (and its JSON twin `/v1/authorized-applications`), and the
 * invitation pages (invitations.routes.ts). Mounted in an encapsulated context of its own, so the
 * session cookie plugin and the HTML error handler apply to these routes only.
 */

const AUTHORIZE_PATHS = ['/oauth/authorize', '/oauth2/auth'] as const;
const ACCOUNT_PATH = '/account/authorized-applications';
/** Where a login form may send the browser afterwards: our own pages only (no open redirect). */
const RETURN_PREFIXES = [
  '/oauth/authorize?',
  '/oauth2/auth?',
  '/device',
  ACCOUNT_PATH,
  '/invitations?',
  ACCOUNT_INVITATIONS_PATH,
  '/console',
];

type Form = Record<string, unknown>;

export async function registerAuthorizeRoutes(app: App, services: AppServices): Promise<void> {
  registerAuthorizedApplicationsApi(app, services);
  await app.register(async (scope) => {
    usePageSecurityHeaders(scope, services.config.publicUrl);
    const sessions = await useBrowserSessions(scope, services.db, services.config.publicUrl);
    scope.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => sendPageError(error, request, reply, 'page request'));
    const pages = scope.withTypeProvider<TypeBoxTypeProvider>();
    new AuthorizePages(services, sessions).register(pages);
    registerInvitationPages(pages, services, sessions);
  });
}

function str(form: Form, name: string): string | undefined {
  const value = form[name];
  return typeof value === 'string' ? value : undefined;
}

function safeReturnTo(value: unknown): string | undefined {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what a return address must not hold.
  if (typeof value !== 'string' || value.length > 8192 || /[\u0000-\u001f\\]/.test(value)) return undefined;
  const allowed = RETURN_PREFIXES.some((p) => (p.endsWith('?') ? value.startsWith(p) : value === p || value.startsWith(`${p}?`)));
  return allowed ? value : undefined;
}

class AuthorizePages {
  constructor(
    private readonly services: AppServices,
    private readonly sessions: Sessions,
  ) {}

  private get db() {
    return this.services.db;
  }

  register(app: FastifyInstance): void {
    const hide = { schema: { hide: true } };
    for (const path of AUTHORIZE_PATHS) {
      app.get(path, hide, (request, reply) => this.authorize(request, reply));
      app.post(path, hide, (request, reply) => this.decide(request, reply, path, undefined));
      // Doorkeeper (Sensorberg): DELETE /oauth/authorize denies.
      app.delete(path, hide, (request, reply) => this.decide(request, reply, path, 'deny'));
    }
    app.get('/login', hide, (request, reply) => this.loginForm(request, reply));
    app.post('/login', hide, (request, reply) => this.login(request, reply));
    app.post('/logout', hide, (request, reply) => this.logout(request, reply));
    app.get('/device', hide, (request, reply) => this.device(request, reply));
    app.post('/device', hide, (request, reply) => this.deviceDecision(request, reply));
    app.get(ACCOUNT_PATH, hide, (request, reply) => this.authorizedApplications(request, reply));
    app.post(`${ACCOUNT_PATH}/revoke`, hide, (request, reply) => this.revoke(request, reply));
  }

  // ---- session helpers -------------------------------------------------------------------------

  private currentUser(session: BrowserSession | null): Promise<User | undefined> {
    return this.sessions.user(session);
  }

  /** The user's role in the organization, or null when not an active member of it. */
  private async activeRole(organizationId: string, userId: string): Promise<Role | null> {
    const member = await findMemberView(this.db, organizationId, userId);
    return member && member.deactivated_at === null ? member.role : null;
  }

  /** The application a login form's return_to belongs to (an authorization request), if valid. */
  private async returnContext(
    returnTo: string | undefined,
  ): Promise<{ applicationName?: string; redirectUri?: string; organizationId?: string }> {
    if (!returnTo || !(returnTo.startsWith('/oauth/authorize?') || returnTo.startsWith('/oauth2/auth?'))) return {};
    const query = Object.fromEntries(new URLSearchParams(returnTo.slice(returnTo.indexOf('?') + 1)));
    const validation = await validateAuthorizationRequest(this.db, query);
    if (validation.kind !== 'ok') return {};
    const { client, redirectUri } = validation.request;
    return { applicationName: client.name, redirectUri, organizationId: client.organization_id };
  }

  private async showLogin(
    reply: FastifyReply,
    session: BrowserSession,
    returnTo: string,
    extra: {
      applicationName?: string | undefined;
      redirectUri?: string | undefined;
      /** The authorization request's organization: other sign-in options are its own. */
      organizationId?: string | undefined;
      email?: string;
      error?: string;
      notice?: string;
      status?: number;
    } = {},
  ) {
    const otherOptions = await this.services.oauth.signInOptions.for({ returnTo, organizationId: extra.organizationId });
    allowFormRedirect(reply, extra.redirectUri);
    return pageHeaders(reply)
      .code(extra.status ?? 200)
      .send(
        loginPage({
          csrf: this.sessions.csrfToken(session),
          returnTo,
          applicationName: extra.applicationName,
          email: extra.email,
          error: extra.error,
          notice: extra.notice,
          otherOptions,
        }),
      );
  }

  private csrfFailure(reply: FastifyReply) {
    return pageHeaders(reply).code(403).send(formExpiredPage());
  }

  private throttled(reply: FastifyReply, refusal: Refusal) {
    const { name, freeFailures, forgetAfterMs } = refusal.policy;
    return reply
      .code(429)
      .header('retry-after', String(refusal.retryAfterSeconds))
      .header('ratelimit-policy', `"${name}";q=${freeFailures};w=${Math.ceil(forgetAfterMs / 1000)}`)
      .header('ratelimit', `"${name}";r=0;t=${refusal.retryAfterSeconds}`);
  }

  // ---- login / logout --------------------------------------------------------------------------

  private async loginForm(request: FastifyRequest, reply: FastifyReply) {
    const session = this.sessions.ensure(request, reply);
    const returnTo = safeReturnTo((request.query as Form).return_to) ?? ACCOUNT_PATH;
    if (await this.currentUser(session)) return pageHeaders(reply).redirect(returnTo, 303);
    return this.showLogin(reply, session, returnTo, await this.returnContext(returnTo));
  }

  private async login(request: FastifyRequest, reply: FastifyReply) {
    const form = (request.body ?? {}) as Form;
    const session = this.sessions.read(request);
    if (!this.sessions.verifyCsrf(session, form.csrf_token) || !session) return this.csrfFailure(reply);
    const returnTo = safeReturnTo(form.return_to) ?? ACCOUNT_PATH;
    const context = await this.returnContext(returnTo);
    const email = (str(form, 'email') ?? '').slice(0, 320);
    const password = (str(form, 'password') ?? '').slice(0, 1024);
    if (!email || !password)
      return this.showLogin(reply, session, returnTo, { ...context, email, error: 'Enter your email and password.', status: 400 });

    // The same door as the password grant: one budget of guesses per account and address for both.
    let tried: string | undefined;
    const result = await this.services.abuse.attempt(
      { door: 'password', credential: normalizeEmail(email), source: sourceOf(request.ip) },
      async () => {
        const user = await findUserByEmail(this.db, email);
        tried = user?.id;
        // verifyPassword checks a decoy hash when there is no user: same timing either way.
        const valid = await verifyPassword(user?.password_hash, password);
        return valid && user && !user.deactivated_at ? user : undefined;
      },
    );
    if ('refused' in result) {
      request.log.warn({ scope: result.refused.scope }, 'login throttled');
      this.throttled(reply, result.refused);
      return this.showLogin(reply, session, returnTo, {
        ...context,
        email,
        status: 429,
        error: `Too many failed sign-in attempts. Wait ${result.refused.retryAfterSeconds} seconds before trying again.`,
      });
    }
    if ('failed' in result) {
      request.log.info('login failed');
      // In the audit log of each of the account's organizations (an unknown email has none).
      if (tried) await recordFailedSignIn(this.db, tried, request.ip, 'login_form');
      return this.showLogin(reply, session, returnTo, { ...context, email, error: 'The email or password is incorrect.', status: 400 });
    }
    const user = result.value;
    await this.sessions.signIn(session, reply, user.id);
    request.log.info({ user_id: user.id }, 'signed in');
    return pageHeaders(reply).redirect(returnTo, 303);
  }

  private async logout(request: FastifyRequest, reply: FastifyReply) {
    const form = (request.body ?? {}) as Form;
    const session = this.sessions.read(request);
    if (!session || !this.sessions.verifyCsrf(session, form.csrf_token)) return this.csrfFailure(reply);
    await this.sessions.signOut(session, reply);
    const returnTo = safeReturnTo(form.return_to);
    return pageHeaders(reply).redirect(returnTo ? `/login?return_to=${encodeURIComponent(returnTo)}` : '/login', 303);
  }

  // ---- authorization endpoint ------------------------------------------------------------------

  private redirectError(
    reply: FastifyReply,
    redirectUri: string,
    error: AuthorizeErrorCode,
    description: string,
    state: string | undefined,
    status: 302 | 303,
  ) {
    return pageHeaders(reply).redirect(
      redirectWith(redirectUri, { error, error_description: description, state, iss: this.services.config.publicUrl }),
      status,
    );
  }

  /** RFC 6749 §4.1.2.1: temporarily_unavailable while the database is away, server_error otherwise. */
  private failedRedirect(request: FastifyRequest, reply: FastifyReply, authz: AuthorizationRequest, error: unknown, status: 302 | 303) {
    if (isDatabaseUnavailable(error)) {
      request.log.warn({ err: error }, 'database unavailable');
      return this.redirectError(
        reply,
        authz.redirectUri,
        'temporarily_unavailable',
        'the authorization server cannot reach its database; try again shortly',
        authz.state,
        status,
      );
    }
    request.log.error({ err: error }, 'authorization request failed');
    return this.redirectError(
      reply,
      authz.redirectUri,
      'server_error',
      'the authorization server failed to process the request',
      authz.state,
      status,
    );
  }

  private async authorize(request: FastifyRequest, reply: FastifyReply) {
    const validation = await validateAuthorizationRequest(this.db, request.query as Form);
    if (validation.kind === 'page') return pageHeaders(reply).code(validation.status).send(errorPage(validation.title, validation.message));
    if (validation.kind === 'redirect')
      return this.redirectError(reply, validation.redirectUri, validation.error, validation.description, validation.state, 302);
    const authz = validation.request;
    try {
      const session = this.sessions.ensure(request, reply);
      const user = await this.currentUser(session);
      if (!user) {
        if (authz.prompt.has('none'))
          return this.redirectError(reply, authz.redirectUri, 'login_required', 'the user is not signed in', authz.state, 302);
        return await this.showLogin(reply, session, request.url, {
          applicationName: authz.client.name,
          redirectUri: authz.redirectUri,
          organizationId: authz.client.organization_id,
        });
      }
      return await this.consentStep(request, reply, authz, user, session);
    } catch (error) {
      return this.failedRedirect(request, reply, authz, error, 302);
    }
  }

  private async consentStep(
    request: FastifyRequest,
    reply: FastifyReply,
    authz: AuthorizationRequest,
    user: User,
    session: BrowserSession,
  ) {
    const { client } = authz;
    const role = await this.activeRole(client.organization_id, user.id);
    const evaluation = evaluateConsent(client.scopes as ScopeToken[], authz.requested, role);
    if (evaluation.canApprove && !authz.prompt.has('consent')) {
      const remembered = await findConsentScopes(this.db, client.organization_id, user.id, client.id);
      if (consentCovers(remembered, evaluation.scopes))
        return this.issueCode(reply, authz, user, evaluation.scopes, evaluation.scopeDisplay, 302);
    }
    if (authz.prompt.has('none')) {
      return evaluation.canApprove
        ? this.redirectError(reply, authz.redirectUri, 'consent_required', 'the user has not approved this application', authz.state, 302)
        : this.redirectError(reply, authz.redirectUri, 'access_denied', 'the user may not approve this request', authz.state, 302);
    }
    const organization = await findOrganizationById(this.db, client.organization_id);
    const path = request.url.split('?')[0] ?? '/oauth/authorize';
    allowFormRedirect(reply, authz.redirectUri);
    return pageHeaders(reply).send(
      consentPage({
        action: path,
        csrf: this.sessions.csrfToken(session),
        carry: { ...authz.params },
        applicationName: client.name,
        clientId: client.client_id,
        privacyPolicyUrl: client.privacy_policy_url,
        organizationName: organization?.name ?? 'your organization',
        userEmail: user.email,
        evaluation,
        redirectOrigin: originOf(authz.redirectUri),
        returnTo: `${path}?${new URLSearchParams(authz.params as Record<string, string>).toString()}`,
      }),
    );
  }

  private async issueCode(
    reply: FastifyReply,
    authz: AuthorizationRequest,
    user: User,
    scopes: readonly string[],
    scopeDisplay: string,
    status: 302 | 303,
  ) {
    const code = await issueAuthorizationCode(this.db, {
      clientPk: authz.client.id,
      organizationId: authz.client.organization_id,
      userId: user.id,
      redirectUri: authz.redirectUri,
      scopes,
      scopeDisplay,
      codeChallenge: authz.codeChallenge,
      codeChallengeMethod: authz.codeChallengeMethod,
    });
    return pageHeaders(reply).redirect(
      redirectWith(authz.redirectUri, { code, state: authz.state, iss: this.services.config.publicUrl }),
      status,
    );
  }

  /** The consent form's answer (POST), or Doorkeeper's DELETE = deny. */
  private async decide(request: FastifyRequest, reply: FastifyReply, path: string, forced: 'deny' | undefined) {
    const form = { ...((request.query ?? {}) as Form), ...((request.body ?? {}) as Form) };
    const session = this.sessions.read(request);
    if (!session || !this.sessions.verifyCsrf(session, form.csrf_token)) return this.csrfFailure(reply);
    const validation = await validateAuthorizationRequest(this.db, pick(form, AUTHORIZE_PARAMS));
    if (validation.kind === 'page') return pageHeaders(reply).code(validation.status).send(errorPage(validation.title, validation.message));
    if (validation.kind === 'redirect')
      return this.redirectError(reply, validation.redirectUri, validation.error, validation.description, validation.state, 303);
    const authz = validation.request;
    try {
      const user = await this.currentUser(session);
      const returnTo = `${path}?${new URLSearchParams(authz.params as Record<string, string>).toString()}`;
      if (!user)
        return await this.showLogin(reply, session, returnTo, {
          applicationName: authz.client.name,
          redirectUri: authz.redirectUri,
          organizationId: authz.client.organization_id,
          notice: 'Your session has expired. Sign in again to continue.',
        });
      const decision = forced ?? str(form, 'decision');
      if (decision === 'deny') {
        request.log.info({ client_id: authz.client.client_id, user_id: user.id }, 'authorization denied by user');
        return this.redirectError(reply, authz.redirectUri, 'access_denied', 'the user denied the request', authz.state, 303);
      }
      if (decision !== 'allow') return pageHeaders(reply).code(400).send(errorPage('Invalid request', 'Choose Allow or Deny.'));
      const role = await this.activeRole(authz.client.organization_id, user.id);
      const evaluation = evaluateConsent(authz.client.scopes as ScopeToken[], authz.requested, role);
      if (!evaluation.canApprove) {
        return this.redirectError(
          reply,
          authz.redirectUri,
          'access_denied',
          evaluation.reason === 'not_member'
            ? 'the user is not a member of the client organization'
            : 'the user role does not hold every requested scope',
          authz.state,
          303,
        );
      }
      await rememberConsent(
        this.db,
        {
          organizationId: authz.client.organization_id,
          userId: user.id,
          client: { pk: authz.client.id, clientId: authz.client.client_id },
          sourceAddress: request.ip,
        },
        evaluation.scopes,
        'authorization_code',
      );
      request.log.info({ client_id: authz.client.client_id, user_id: user.id }, 'authorization approved');
      return await this.issueCode(reply, authz, user, evaluation.scopes, evaluation.scopeDisplay, 303);
    } catch (error) {
      return this.failedRedirect(request, reply, authz, error, 303);
    }
  }

  // ---- device verification (RFC 8628 §3.3) ------------------------------------------------------

  private async device(request: FastifyRequest, reply: FastifyReply) {
    const session = this.sessions.ensure(request, reply);
    const query = request.query as Form;
    const typed = typeof query.user_code === 'string' ? query.user_code.slice(0, 64) : undefined;
    const user = await this.currentUser(session);
    const returnTo = typed ? `/device?user_code=${encodeURIComponent(typed)}` : '/device';
    if (!user) return this.showLogin(reply, session, returnTo, { notice: 'Sign in to connect your device.' });
    const csrf = this.sessions.csrfToken(session);
    if (!typed) return pageHeaders(reply).send(deviceEntryPage({ csrf, userEmail: user.email }));
    return this.deviceConsent(request, reply, session, user, typed);
  }

  private async deviceConsent(request: FastifyRequest, reply: FastifyReply, session: BrowserSession, user: User, typed: string) {
    const csrf = this.sessions.csrfToken(session);
    // User codes are short (RFC 8628 §5.1): few wrong guesses per address.
    const result = await this.services.abuse.attempt({ door: 'user-code', source: sourceOf(request.ip) }, () =>
      findPendingDeviceCode(this.db, typed),
    );
    if ('refused' in result) {
      this.throttled(reply, result.refused);
      return pageHeaders(reply).send(
        deviceEntryPage({
          csrf,
          userEmail: user.email,
          userCode: typed,
          error: `Too many wrong codes. Wait ${result.refused.retryAfterSeconds} seconds before trying again.`,
        }),
      );
    }
    if ('failed' in result) {
      return pageHeaders(reply)
        .code(400)
        .send(
          deviceEntryPage({
            csrf,
            userEmail: user.email,
            userCode: typed,
            error: 'That code is not valid. It may have expired or already been used; check your device and try again.',
          }),
        );
    }
    const pending = result.value;
    const role = await this.activeRole(pending.organizationId, user.id);
    const evaluation = evaluateConsent(pending.clientScopes as ScopeToken[], parseScopeParam(pending.requestedScope), role);
    const organization = await findOrganizationById(this.db, pending.organizationId);
    return pageHeaders(reply).send(
      consentPage({
        action: '/device',
        csrf,
        carry: { user_code: pending.userCode },
        applicationName: pending.clientName,
        clientId: pending.clientId,
        privacyPolicyUrl: pending.privacyPolicyUrl,
        organizationName: organization?.name ?? 'your organization',
        userEmail: user.email,
        evaluation,
        userCode: pending.userCode,
        returnTo: `/device?user_code=${encodeURIComponent(pending.userCode)}`,
      }),
    );
  }

  private async deviceDecision(request: FastifyRequest, reply: FastifyReply) {
    const form = (request.body ?? {}) as Form;
    const session = this.sessions.read(request);
    if (!session || !this.sessions.verifyCsrf(session, form.csrf_token)) return this.csrfFailure(reply);
    const typed = (str(form, 'user_code') ?? '').slice(0, 64);
    const user = await this.currentUser(session);
    if (!user)
      return this.showLogin(reply, session, typed ? `/device?user_code=${encodeURIComponent(typed)}` : '/device', {
        notice: 'Your session has expired. Sign in again to continue.',
      });
    const csrf = this.sessions.csrfToken(session);
    const pending = typed ? await findPendingDeviceCode(this.db, typed) : undefined;
    if (!pending) {
      return pageHeaders(reply)
        .code(400)
        .send(
          deviceEntryPage({
            csrf,
            userEmail: user.email,
            userCode: typed,
            error: 'That code is no longer valid: it has expired or was already used.',
          }),
        );
    }
    const decision = str(form, 'decision');
    if (decision !== 'allow' && decision !== 'deny')
      return pageHeaders(reply).code(400).send(errorPage('Invalid request', 'Choose Allow or Deny.'));
    const base = { userId: user.id, organizationId: pending.organizationId };
    if (decision === 'deny') {
      await decideDeviceCode(this.db, pending.userCode, { ...base, approve: false, scopes: [], scopeDisplay: '' });
      request.log.info({ client_id: pending.clientId, user_id: user.id }, 'device authorization denied by user');
      return pageHeaders(reply).send(deviceDonePage(false, pending.clientName));
    }
    const role = await this.activeRole(pending.organizationId, user.id);
    const evaluation = evaluateConsent(pending.clientScopes as ScopeToken[], parseScopeParam(pending.requestedScope), role);
    if (!evaluation.canApprove) {
      return pageHeaders(reply).code(403).send(errorPage('Cannot approve', 'Your role does not allow you to approve this request.'));
    }
    const decided = await decideDeviceCode(this.db, pending.userCode, {
      ...base,
      approve: true,
      scopes: evaluation.scopes,
      scopeDisplay: evaluation.scopeDisplay,
    });
    if (!decided) {
      return pageHeaders(reply)
        .code(400)
        .send(deviceEntryPage({ csrf, userEmail: user.email, error: 'That code is no longer valid: it has expired or was already used.' }));
    }
    await rememberConsent(
      this.db,
      {
        organizationId: pending.organizationId,
        userId: user.id,
        client: { pk: pending.clientPk, clientId: pending.clientId },
        sourceAddress: request.ip,
      },
      evaluation.scopes,
      'device_code',
    );
    request.log.info({ client_id: pending.clientId, user_id: user.id }, 'device authorization approved');
    return pageHeaders(reply).send(deviceDonePage(true, pending.clientName));
  }

  // ---- authorized applications ------------------------------------------------------------------

  private async authorizedApplications(request: FastifyRequest, reply: FastifyReply) {
    const session = this.sessions.ensure(request, reply);
    const user = await this.currentUser(session);
    if (!user) return this.showLogin(reply, session, ACCOUNT_PATH);
    const applications = await listAuthorizedApplications(this.db, user.id);
    const revoked = (request.query as Form).revoked;
    let notice: string | undefined;
    if (typeof revoked === 'string' && revoked.length <= 200) {
      const client = await findClientByClientId(this.db, revoked);
      if (client) notice = `Access for ${client.name} has been revoked.`;
    }
    return pageHeaders(reply).send(
      authorizedApplicationsPage({ csrf: this.sessions.csrfToken(session), userEmail: user.email, applications, notice }),
    );
  }

  private async revoke(request: FastifyRequest, reply: FastifyReply) {
    const form = (request.body ?? {}) as Form;
    const session = this.sessions.read(request);
    if (!session || !this.sessions.verifyCsrf(session, form.csrf_token)) return this.csrfFailure(reply);
    const user = await this.currentUser(session);
    if (!user) return this.showLogin(reply, session, ACCOUNT_PATH, { notice: 'Your session has expired. Sign in again to continue.' });
    const withdrawn = await withdrawAuthorization(this.db, this.services.bearer, str(form, 'client_id'), {
      organizationId: str(form, 'organization_id'),
      userId: user.id,
      sourceAddress: request.ip,
    });
    if (!withdrawn) {
      return pageHeaders(reply).code(404).send(errorPage('Not found', 'That application is not among your authorized applications.'));
    }
    const { client } = withdrawn;
    request.log.info(
      { client_id: client.client_id, user_id: user.id, grants: withdrawn.revoked.grantIds.length },
      'application authorization revoked',
    );
    return pageHeaders(reply).redirect(`${ACCOUNT_PATH}?revoked=${encodeURIComponent(client.client_id)}`, 303);
  }
}

function pick(form: Form, names: readonly string[]): Form {
  const out: Form = {};
  for (const name of names) if (name in form) out[name] = form[name];
  return out;
}

/**
 * CSP `form-action` also governs where a form submission may be redirected (Chromium checks the
 * whole redirect chain), so the login and consent pages of an authorization request allow the
 * client's redirect URI origin, and only that, besides 'self'.
 */
function allowFormRedirect(reply: FastifyReply, redirectUri: string | undefined): void {
  if (!redirectUri) return;
  const source = formActionSource(redirectUri);
  const csp = reply.getHeader('content-security-policy');
  if (!source || typeof csp !== 'string') return;
  reply.header(
    'content-security-policy',
    csp.replace(/form-action ([^;]*)/, (_all, sources: string) => `form-action ${sources} ${source}`),
  );
}

function formActionSource(uri: string): string | undefined {
  try {
    const url = new URL(uri);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url.origin;
    return /^[a-z][a-z0-9+.-]*:$/i.test(url.protocol) ? url.protocol : undefined;
  } catch {
    return undefined;
  }
}

function originOf(uri: string): string | undefined {
  try {
    const url = new URL(uri);
    return url.origin === 'null' ? `${url.protocol}` : url.origin;
  } catch {
    return undefined;
  }
}
