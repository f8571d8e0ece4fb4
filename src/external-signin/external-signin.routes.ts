import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import * as client from 'openid-client';
import { usePageSecurityHeaders } from '../http/security-headers.js';
import { findMemberView } from '../identity/members.repo.js';
import { findUserByEmail } from '../identity/users.repo.js';
import { errorPage, pageHeaders, sendPageError } from '../oauth/authorize/pages.js';
import { findClientByClientId } from '../oauth/clients.repo.js';
import type { SecretBox } from '../security/secret-box.js';
import { sha256 } from '../security/tokens.js';
import type { App, AppServices } from '../server/context.js';
import { type Sessions, useBrowserSessions } from '../web/session.js';
import type { IdentityProvider } from './external-signin.schema.js';
import { insertPendingSignin, takePendingSignin } from './external-signins.repo.js';
import { findEnabledProvider, listEnabledProviders } from './identity-providers.repo.js';
import { type RelyingParty, isUnavailable } from './relying-party.js';

/**
 * Sign-in with an organization's external OpenID Connect provider (openid-client as the relying
 * party): the login page's buttons (a sign-in options source), `GET /login/external/:id` which
 * sends the browser to the provider (authorization code, PKCE S256, state and nonce kept
 * server-side, bound to this browser's session), and `GET /login/external/callback` which takes
 * the state once, redeems the code, checks what the provider says and signs in the person who has
 * that verified email and is an active member of the provider's organization. Nobody is created:
 * an unknown email is told to ask for an invitation. Every failure is a page: 400 for a request
 * that cannot be finished, 403 for a person who may not sign in this way, 502 when the provider
 * cannot be reached.
 */

export const CALLBACK_PATH = '/login/external/callback';
const START_PATH = '/login/external';
/** How long a sign-in may take at the provider. */
const PENDING_SECONDS = 10 * 60;
const AUTHORIZE_PREFIXES = ['/oauth/authorize?', '/oauth2/auth?'];

class SignInRefused extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 502,
    readonly title: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Where to go once signed in, handed back to /login (which checks it against its own list of
 * pages and sends a signed-in browser on): a path of this site, or nothing.
 */
function returnPath(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 8192 || !value.startsWith('/') || value.startsWith('//')) return undefined;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what a return address must not hold.
  return /[\u0000-\u001f\\]/.test(value) ? undefined : value;
}

function emailDomain(email: string): string {
  return email.slice(email.lastIndexOf('@') + 1).toLowerCase();
}

export interface ExternalSigninOptions {
  secrets: () => SecretBox;
  relyingParty: RelyingParty;
}

export async function registerExternalSigninRoutes(app: App, services: AppServices, options: ExternalSigninOptions): Promise<void> {
  services.oauth.signInOptions.add(async ({ returnTo, organizationId }) => {
    const providers = await listEnabledProviders(services.db, organizationId);
    return providers.map((p) => ({
      label: organizationId === undefined ? `Sign in with ${p.name} (${p.organizationName})` : `Sign in with ${p.name}`,
      href: `${START_PATH}/${p.id}?return_to=${encodeURIComponent(returnTo)}`,
    }));
  });
  await app.register(async (scope) => {
    usePageSecurityHeaders(scope, services.config.publicUrl);
    const sessions = await useBrowserSessions(scope, services.db, services.config.publicUrl);
    scope.setErrorHandler((error: Error & { statusCode?: number }, request, reply) =>
      error instanceof SignInRefused
        ? pageHeaders(reply).code(error.status).send(errorPage(error.title, error.message))
        : sendPageError(error, request, reply, 'external sign-in'),
    );
    new ExternalSigninPages(services, sessions, options).register(scope);
  });
}

class ExternalSigninPages {
  constructor(
    private readonly services: AppServices,
    private readonly sessions: Sessions,
    private readonly options: ExternalSigninOptions,
  ) {}

  private get db() {
    return this.services.db;
  }

  private get redirectUri(): string {
    // Read per request: with PORT=0 the public URL is known only once listening.
    return `${this.services.config.publicUrl}${CALLBACK_PATH}`;
  }

  register(app: FastifyInstance): void {
    const hide = { schema: { hide: true } };
    app.get(CALLBACK_PATH, hide, (request, reply) => this.callback(request, reply));
    app.get(`${START_PATH}/:id`, hide, (request, reply) => this.start(request, reply));
  }

  private async configuration(provider: IdentityProvider, request: FastifyRequest): Promise<client.Configuration> {
    const secret = this.options.secrets().open(provider.client_secret_sealed, provider.id);
    try {
      return await this.options.relyingParty.configuration(provider, secret);
    } catch (error) {
      request.log.warn({ err: error, provider_id: provider.id }, 'identity provider unreachable');
      throw this.unreachable(provider);
    }
  }

  private unreachable(provider: IdentityProvider): SignInRefused {
    return new SignInRefused(
      502,
      `${provider.name} is not reachable`,
      `${provider.name} could not be reached or did not answer as expected, so you cannot sign in with it right now. Try again in a moment, or sign in with your password.`,
    );
  }

  /** `GET /login/external/:id?return_to=…`: off to the provider. */
  private async start(request: FastifyRequest, reply: FastifyReply) {
    const { id } = request.params as { id: string };
    const provider = await findEnabledProvider(this.db, id);
    if (!provider)
      throw new SignInRefused(
        404,
        'Sign-in option not found',
        'This sign-in option does not exist or is turned off. Go back and choose another.',
      );
    const returnTo = returnPath((request.query as Record<string, unknown>).return_to);
    await this.checkBelongs(provider, returnTo);
    const session = this.sessions.ensure(request, reply);
    const config = await this.configuration(provider, request);
    const state = client.randomState();
    const nonce = client.randomNonce();
    const codeVerifier = client.randomPKCECodeVerifier();
    await insertPendingSignin(
      this.db,
      {
        stateHash: sha256(state),
        organizationId: provider.organization_id,
        providerId: provider.id,
        browserHash: sha256(session.nonce),
        nonce,
        codeVerifier,
        returnTo: returnTo ?? '',
      },
      PENDING_SECONDS,
    );
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri,
      scope: 'openid email',
      state,
      nonce,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    });
    request.log.info({ provider_id: provider.id }, 'external sign-in started');
    return pageHeaders(reply).redirect(url.href, 303);
  }

  /** An authorization request is signed in for with its own organization's providers only. */
  private async checkBelongs(provider: IdentityProvider, returnTo: string | undefined): Promise<void> {
    if (!returnTo || !AUTHORIZE_PREFIXES.some((p) => returnTo.startsWith(p))) return;
    const clientId = new URLSearchParams(returnTo.slice(returnTo.indexOf('?') + 1)).get('client_id');
    const oauthClient = clientId && clientId.length <= 200 ? await findClientByClientId(this.db, clientId) : undefined;
    if (oauthClient && oauthClient.organization_id !== provider.organization_id) {
      throw new SignInRefused(
        400,
        'Sign-in option not available',
        `${provider.name} is not a sign-in option of the organization this application belongs to. Go back and choose another.`,
      );
    }
  }

  /** `GET /login/external/callback?code&state&iss` (or `error`): back from the provider. */
  private async callback(request: FastifyRequest, reply: FastifyReply) {
    const query = request.query as Record<string, unknown>;
    const state = typeof query.state === 'string' && query.state.length <= 512 ? query.state : undefined;
    const expired = new SignInRefused(
      400,
      'Sign-in expired',
      'This sign-in cannot be finished: it has expired, was already used, or was started in another browser. Go back to the login page and start again.',
    );
    if (!state) throw expired;
    // Taken once: a replayed or unknown state finds nothing.
    const pending = await takePendingSignin(this.db, sha256(state));
    const session = this.sessions.read(request);
    if (!pending || !session || sha256(session.nonce) !== pending.browserHash) throw expired;
    const provider = await findEnabledProvider(this.db, pending.providerId);
    if (!provider || provider.organization_id !== pending.organizationId) throw expired;

    if (typeof query.error === 'string') {
      request.log.info({ provider_id: provider.id, error: query.error.slice(0, 100) }, 'external sign-in refused by the provider');
      throw new SignInRefused(
        403,
        'Sign-in not completed',
        `${provider.name} did not sign you in${query.error === 'access_denied' ? ' (the request was cancelled or denied)' : ''}. Go back to the login page to try again.`,
      );
    }
    // RFC 9207: the answer names the provider it comes from; a different one is a mix-up attack.
    if (query.iss !== undefined && query.iss !== provider.issuer) {
      request.log.warn({ provider_id: provider.id }, 'external sign-in: iss does not match the provider');
      throw new SignInRefused(
        400,
        'Sign-in refused',
        `The answer did not come from ${provider.name}. Go back to the login page and start again.`,
      );
    }
    const config = await this.configuration(provider, request);
    const rawQuery = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
    let claims: Record<string, unknown>;
    try {
      const tokens = await client.authorizationCodeGrant(config, new URL(`${this.redirectUri}${rawQuery}`), {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      const idClaims = tokens.claims();
      if (!idClaims) throw new SignInRefused(400, 'Sign-in refused', `${provider.name} did not identify you (no ID token).`);
      claims = { ...idClaims };
      if ((claims.email === undefined || claims.email_verified === undefined) && config.serverMetadata().userinfo_endpoint) {
        const info = await client.fetchUserInfo(config, tokens.access_token, idClaims.sub);
        claims = { ...info, ...claims, email: claims.email ?? info.email, email_verified: claims.email_verified ?? info.email_verified };
      }
    } catch (error) {
      if (error instanceof SignInRefused) throw error;
      if (isUnavailable(error)) {
        request.log.warn({ err: error, provider_id: provider.id }, 'identity provider unreachable');
        throw this.unreachable(provider);
      }
      request.log.warn({ err: error, provider_id: provider.id }, 'external sign-in: the answer could not be verified');
      throw new SignInRefused(
        400,
        'Sign-in refused',
        `The answer from ${provider.name} could not be verified, so you were not signed in. Go back to the login page and start again.`,
      );
    }
    const user = await this.person(provider, claims, request);
    await this.sessions.signIn(session, reply, user);
    request.log.info({ user_id: user, provider_id: provider.id }, 'signed in with an external provider');
    const next = pending.returnTo ? `/login?return_to=${encodeURIComponent(pending.returnTo)}` : '/login';
    return pageHeaders(reply).redirect(next, 303);
  }

  /** The id of the person the claims name, if they may sign in with this provider. */
  private async person(provider: IdentityProvider, claims: Record<string, unknown>, request: FastifyRequest): Promise<string> {
    const email = typeof claims.email === 'string' && claims.email.length <= 320 ? claims.email : undefined;
    if (!email)
      throw new SignInRefused(
        403,
        'Email address needed',
        `${provider.name} did not share your email address, so you cannot be signed in with it.`,
      );
    if (claims.email_verified !== true) {
      throw new SignInRefused(
        403,
        'Email address not verified',
        `${provider.name} has not verified the email address ${email}. Verify it there first, or sign in with your password.`,
      );
    }
    const domains = provider.allowed_email_domains;
    if (domains.length > 0 && !domains.includes(emailDomain(email))) {
      throw new SignInRefused(403, 'Email address not allowed', `Addresses like ${email} may not sign in with ${provider.name}.`);
    }
    const user = await findUserByEmail(this.db, email);
    const member = user && !user.deactivated_at ? await findMemberView(this.db, provider.organization_id, user.id) : undefined;
    if (!user || !member || member.deactivated_at !== null) {
      request.log.info({ provider_id: provider.id }, 'external sign-in: no active member with that email');
      throw new SignInRefused(
        403,
        'No account for this address',
        `${email} has no active account in this organization. An administrator must invite you before you can sign in; ask them for an invitation.`,
      );
    }
    return user.id;
  }
}
