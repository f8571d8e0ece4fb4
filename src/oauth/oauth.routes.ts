import rateLimit from '@fastify/rate-limit';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sourceOf } from '../abuse/source.js';
import { bearerToken } from '../auth/bearer.js';
import { databaseUnavailable, renderWrongMethodAs } from '../http/errors.js';
import { isDatabaseUnavailable } from '../storage/availability.js';
import { HttpProblem } from '../http/problem.js';
import { SCOPES, SCOPE_ALIASES, decideScopes, parseScopeParam } from '../identity/scopes.js';
import type { App } from '../server/context.js';
import type { AppServices } from '../server/context.js';
import type { Params } from './client-auth.js';
import { createDeviceAuthorization } from './device-codes.js';
import {
  OAuthError,
  invalidRequest,
  invalidScope,
  noStore,
  rateLimitHeaders,
  sendOAuthError,
  tooManyRequests,
  unauthorizedClient,
  unsupportedGrantType,
} from './errors.js';
import { GRANT_TYPES, grantTypeOf } from './grant-types.js';
import { GRANT_HANDLERS } from './grants/index.js';
import type { OAuthClient } from './oauth.schema.js';
import { collectParams } from './params.js';
import { purgeJob } from './purge.js';
import { type OAuthRuntime, clientAllows, clientScopeList } from './runtime.js';
import { ACCESS_TOKEN_PREFIX, JWT_PREFIX, REFRESH_TOKEN_PREFIX, principalOfToken } from './tokens/token-service.js';
import { findActiveAccessToken } from './tokens/tokens.repo.js';
import { forgetCachedClients } from './clients.repo.js';

/**
 * The authorization server's endpoints (SPEC §3), mounted by the oauth module. They live in an
 * encapsulated plugin with its own error handler, so everything they answer — validation and
 * body-parsing failures included — is RFC 6749 §5.2 JSON, never problem+json. Also registers the
 * bearer resolvers for access tokens (opaque and JWT) and the purge job.
 */

export async function registerOAuthRoutes(app: App, services: AppServices): Promise<void> {
  const rt = services.oauth;
  // A wrong method on a token-family endpoint is still answered in RFC 6749 JSON (with Allow).
  renderWrongMethodAs(
    app,
    ['/oauth/token', '/oauth2/token', '/auth/oauth', '/oauth/revoke', '/oauth/introspect', '/oauth/device_authorization', '/oauth/jwks'],
    (_request, reply, detail) => sendOAuthError(reply, new OAuthError('invalid_request', detail, 405)),
  );

  services.invalidations.on((invalidation) => {
    if (invalidation.kind === 'clients' || invalidation.kind === 'all') forgetCachedClients();
  });
  services.bearer.register({
    prefix: ACCESS_TOKEN_PREFIX,
    async resolve(token, hash) {
      if (token.length > 200) return null;
      const view = await findActiveAccessToken(services.db, hash);
      return view ? principalOfToken(view, hash) : null;
    },
  });
  services.bearer.register({
    prefix: JWT_PREFIX,
    async resolve(token, hash) {
      if (token.length > 8192) return null;
      const view = await rt.tokens.findAccessToken(token);
      return view ? principalOfToken(view, hash) : null;
    },
  });

  await app.register(async (oauth) => oauthPlugin(oauth, rt));
  services.jobs.add(purgeJob(rt));
}

function oauthErrorOf(error: unknown, request: FastifyRequest): OAuthError {
  if (error instanceof OAuthError) return error;
  if (error instanceof HttpProblem) {
    // From the bearer check (RFC 6750): keep status and challenge, speak OAuth JSON.
    const challenge = error.headers['www-authenticate'] ?? '';
    const code =
      /error="([^"]+)"/.exec(challenge)?.[1] ??
      (error.status === 401 ? 'invalid_token' : error.status === 429 ? 'rate_limited' : 'invalid_request');
    return new OAuthError(code, error.message, error.status, error.headers);
  }
  if (isDatabaseUnavailable(error)) {
    const problem = databaseUnavailable(request, error);
    return new OAuthError('temporarily_unavailable', problem.message, 503, problem.headers);
  }
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) return invalidRequest(`The request is malformed: ${fastifyError.message}`);
  const status = fastifyError.statusCode ?? 500;
  if (status === 429) return new OAuthError('rate_limited', 'Too many requests; retry later.', 429);
  if (status >= 400 && status < 500) {
    // Unparseable bodies, unsupported media types, bodies too large: all malformed requests.
    return new OAuthError('invalid_request', `The request is malformed: ${fastifyError.message}`, status === 413 ? 413 : 400);
  }
  request.log.error({ err: error }, 'oauth request failed');
  return new OAuthError('server_error', 'An unexpected error occurred; it has been logged.', 500);
}

function metadata(issuer: string): Record<string, unknown> {
  return {
    issuer,
    authorization_endpoint: `${issuer}/oauth/authorize`,
    token_endpoint: `${issuer}/oauth/token`,
    revocation_endpoint: `${issuer}/oauth/revoke`,
    introspection_endpoint: `${issuer}/oauth/introspect`,
    device_authorization_endpoint: `${issuer}/oauth/device_authorization`,
    jwks_uri: `${issuer}/oauth/jwks`,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: [...GRANT_TYPES],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    code_challenge_methods_supported: ['S256'],
    // The authorize pages add `iss` to every redirect (RFC 9207).
    authorization_response_iss_parameter_supported: true,
    scopes_supported: [...SCOPES, ...SCOPE_ALIASES],
    service_documentation: `${issuer}/docs`,
  };
}

async function oauthPlugin(oauth: FastifyInstance, rt: OAuthRuntime): Promise<void> {
  const issuer = rt.config.publicUrl;
  const { ipMax, clientMax, windowMs } = rt.settings.rateLimit;
  const windowSeconds = Math.ceil(windowMs / 1000);

  oauth.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) =>
    sendOAuthError(reply, oauthErrorOf(error, request)),
  );

  // Abuse limits (429 with Retry-After and RateLimit headers): per client IP on the credential
  // endpoints, per authenticated client on issuance (token, device authorization). Introspection,
  // metadata and JWKS are high-volume reads of authenticated or public data and are not limited
  // per request (failed client authentication is, by the back-off). Behind a reverse proxy,
  // TRUST_PROXY makes request.ip the caller's address rather than the proxy's.
  if (!oauth.hasDecorator('createRateLimit')) await oauth.register(rateLimit, { global: false, cache: 20_000 });
  const clientKeys = new WeakMap<FastifyRequest, string>();
  const ipLimiter = oauth.createRateLimit({ max: ipMax, timeWindow: windowMs, keyGenerator: (req) => `oauth-ip:${req.ip}` });
  const clientLimiter = oauth.createRateLimit({
    max: clientMax,
    timeWindow: windowMs,
    keyGenerator: (req) => `oauth-client:${clientKeys.get(req) ?? ''}`,
  });
  type LimitResult = Awaited<ReturnType<typeof ipLimiter>>;
  const enforce = (reply: FastifyReply, result: LimitResult, what: string) => {
    if (result.isAllowed) return;
    const resetSeconds = Math.max(1, result.ttlInSeconds);
    if (result.isExceeded)
      throw tooManyRequests(`Too many requests from this ${what}; retry in ${resetSeconds} s.`, resetSeconds, {
        max: result.max,
        windowSeconds,
      });
    reply.headers(rateLimitHeaders(result.max, result.remaining, resetSeconds, windowSeconds));
  };
  const limitIp = async (request: FastifyRequest, reply: FastifyReply) => {
    if (ipMax > 0) enforce(reply, await ipLimiter(request), 'address');
  };
  const limitClient = async (request: FastifyRequest, reply: FastifyReply, client: OAuthClient) => {
    if (clientMax === 0) return;
    clientKeys.set(request, client.id);
    enforce(reply, await clientLimiter(request), 'client');
  };
  const ipLimited = { onRequest: limitIp };

  const authenticateClient = async (request: FastifyRequest, params: Params, grantType?: string) =>
    rt.clientAuth.authenticate(request.headers.authorization, params, sourceOf(request.ip), {
      // Sensorberg's documented external-token login carries no client secret.
      secretless: (client) =>
        grantType === 'password' &&
        client.user_auth === 'external_authentication_token' &&
        params.external_authentication_token !== undefined,
    });

  // --- POST /oauth/token (+ the seeds' aliases) ---------------------------------------------
  const tokenEndpoint = async (request: FastifyRequest, reply: FastifyReply) => {
    const params = collectParams(request);
    if (params.grant_type === undefined) throw invalidRequest('grant_type is required.');
    const grantType = grantTypeOf(params.grant_type);
    if (!grantType) throw unsupportedGrantType(`The grant type "${params.grant_type}" is not supported.`);
    const { client, method } = await authenticateClient(request, params, grantType);
    await limitClient(request, reply, client);
    // Refresh rights follow the family (password and device grants, offline_access); the grant module decides.
    if (grantType !== 'refresh_token' && !clientAllows(client, grantType))
      throw unauthorizedClient(`This client is not allowed to use the ${grantType} grant.`);
    const response = await GRANT_HANDLERS[grantType]({ rt, client, method, params, source: sourceOf(request.ip), address: request.ip });
    noStore(reply);
    return response;
  };
  const tokenSchema = {
    tags: ['oauth'],
    summary: 'Token endpoint (RFC 6749 §3.2)',
    description:
      'Grants authorization_code (PKCE S256), client_credentials, password, refresh_token and urn:ietf:params:oauth:grant-type:device_code. Form-urlencoded or JSON body; client authentication by HTTP Basic, client_secret in the body, or client_id alone for public clients.',
  };
  for (const path of ['/oauth/token', '/oauth2/token', '/auth/oauth']) {
    oauth.post(
      path,
      { ...ipLimited, schema: path === '/oauth/token' ? tokenSchema : { ...tokenSchema, summary: `${tokenSchema.summary} (alias)` } },
      tokenEndpoint,
    );
  }

  // --- DELETE /oauth/token: revoke the presented bearer token --------------------------------
  oauth.delete(
    '/oauth/token',
    { ...ipLimited, schema: { tags: ['oauth'], summary: 'Revoke the access token presented as the Bearer credential' } },
    async (request, reply) => {
      const principal = await rt.bearer.authenticate(request);
      const token = bearerToken(request) as string;
      if (principal.kind !== 'user_token' && principal.kind !== 'app_token')
        throw invalidRequest('Only OAuth access tokens are revoked here; revoke API keys at /v1/api-keys.');
      await rt.tokens.revokeAccessToken(token);
      noStore(reply);
      return {};
    },
  );

  // --- POST /oauth/revoke (RFC 7009) ------------------------------------------------------------
  oauth.post(
    '/oauth/revoke',
    { ...ipLimited, schema: { tags: ['oauth'], summary: 'Token revocation (RFC 7009)' } },
    async (request, reply) => {
      const params = collectParams(request);
      const { client } = await authenticateClient(request, params);
      const token = params.token;
      if (token === undefined) throw invalidRequest('token is required.');
      const hint = params.token_type_hint;
      if (hint !== undefined && hint !== 'access_token' && hint !== 'refresh_token') {
        throw new OAuthError('unsupported_token_type', `token_type_hint "${hint}" is not a token type this server revokes.`);
      }
      noStore(reply);
      if (token.startsWith(REFRESH_TOKEN_PREFIX)) {
        const stored = await rt.tokens.findRefreshToken(token);
        if (stored) {
          if (stored.clientPk !== client.id) throw unauthorizedClient('The token was not issued to this client.');
          await rt.tokens.revokeFamily(stored.grantId);
        }
        return {};
      }
      if ((await rt.tokens.revokeAccessToken(token, client.id)) === 'foreign')
        throw unauthorizedClient('The token was not issued to this client.');
      // Unknown, expired or already revoked tokens: nothing to do, and the answer is the same (§2.2).
      return {};
    },
  );

  // --- POST /oauth/introspect (RFC 7662) --------------------------------------------------------
  oauth.post('/oauth/introspect', { schema: { tags: ['oauth'], summary: 'Token introspection (RFC 7662)' } }, async (request, reply) => {
    const params = collectParams(request);
    const { client, method } = await authenticateClient(request, params);
    if (method === 'none')
      throw new OAuthError('invalid_client', 'Introspection needs a confidential client.', 401, {
        'www-authenticate': 'Basic realm="sensorcloud", charset="UTF-8"',
      });
    const token = params.token;
    if (token === undefined) throw invalidRequest('token is required.');
    noStore(reply);
    const visible = (owner: { clientPk: string; organizationId: string }) =>
      owner.clientPk === client.id || (client.resource_server && owner.organizationId === client.organization_id);

    if (token.startsWith(REFRESH_TOKEN_PREFIX)) {
      const stored = await rt.tokens.findRefreshToken(token);
      if (!stored || !visible(stored) || stored.usedAt || stored.revokedAt || stored.grantRevokedAt || stored.expired)
        return { active: false };
      return {
        active: true,
        token_type: 'refresh_token',
        scope: stored.grantScopes.join(' '),
        client_id: stored.clientId,
        sub: stored.userId ?? stored.clientId,
        iss: issuer,
        iat: Math.floor(stored.createdAt.getTime() / 1000),
        ...(stored.expiresAt && { exp: Math.floor(stored.expiresAt.getTime() / 1000) }),
      };
    }
    // Access tokens go through the bearer cache the resource routes use (≤ 1 s, evicted at once on
    // this node by every revocation path), so a resource server's per-request introspection
    // costs no database round trip while the token is hot.
    if (!token.startsWith(ACCESS_TOKEN_PREFIX) && !token.startsWith(JWT_PREFIX)) return { active: false };
    const principal = await rt.bearer.resolve(token);
    const details = principal?.token;
    if (!principal || !details || !visible({ clientPk: details.clientPk, organizationId: principal.organizationId }))
      return { active: false };
    const forUser = principal.userId !== null && details.grantType !== 'client_credentials';
    return {
      active: true,
      token_type: 'Bearer',
      scope: [...principal.scopes].join(' '),
      client_id: principal.clientId,
      ...(details.userEmail && details.grantType !== 'client_credentials' && { username: details.userEmail }),
      sub: forUser ? (principal.userId as string) : principal.clientId,
      aud: issuer,
      iss: issuer,
      iat: Math.floor(details.createdAt.getTime() / 1000),
      exp: Math.floor((principal.expiresAt as Date).getTime() / 1000),
      organization_id: principal.organizationId,
    };
  });

  // --- GET /oauth/token/info (Doorkeeper) -------------------------------------------------------
  oauth.get(
    '/oauth/token/info',
    { ...ipLimited, schema: { tags: ['oauth'], summary: 'Details of the bearer token used (Doorkeeper shape)' } },
    async (request, reply) => {
      const principal = await rt.bearer.authenticate(request);
      const token = bearerToken(request) as string;
      noStore(reply);
      const expiresIn = (at: Date | null) => (at ? Math.max(0, Math.floor((at.getTime() - Date.now()) / 1000)) : null);
      if (principal.kind === 'user_token' || principal.kind === 'app_token') {
        const view = await rt.tokens.findAccessToken(token);
        if (!view)
          throw new HttpProblem({
            status: 401,
            detail: 'The access token is invalid, expired or revoked.',
            headers: { 'www-authenticate': 'Bearer realm="sensorcloud", error="invalid_token"' },
          });
        return {
          resource_owner_id: view.userId,
          scope: view.scopeDisplay.split(' ').filter((s) => s !== ''),
          expires_in: expiresIn(view.expiresAt),
          application: { uid: view.clientId },
          created_at: Math.floor(view.createdAt.getTime() / 1000),
        };
      }
      return {
        resource_owner_id: principal.userId,
        scope: [...principal.scopes],
        expires_in: expiresIn(principal.expiresAt),
        application: null,
        created_at: null,
      };
    },
  );

  // --- POST /oauth/device_authorization (RFC 8628 §3.1) -----------------------------------------
  oauth.post(
    '/oauth/device_authorization',
    { ...ipLimited, schema: { tags: ['oauth'], summary: 'Device authorization (RFC 8628)' } },
    async (request, reply) => {
      const params = collectParams(request);
      const { client } = await authenticateClient(request, params);
      await limitClient(request, reply, client);
      if (!clientAllows(client, 'urn:ietf:params:oauth:grant-type:device_code'))
        throw unauthorizedClient('This client is not allowed to use the device authorization grant.');
      const requested = parseScopeParam(params.scope);
      const check = decideScopes({ requested, clientAllowed: clientScopeList(client), userToken: true });
      if (!check.ok) throw invalidScope(check.description);
      const created = await createDeviceAuthorization(rt.db, {
        clientPk: client.id,
        organizationId: client.organization_id,
        requestedScope: requested.length > 0 ? requested.join(' ') : null,
        ttlSeconds: rt.settings.deviceCodeTtlSeconds,
        intervalSeconds: rt.settings.deviceIntervalSeconds,
      });
      noStore(reply);
      return {
        device_code: created.deviceCode,
        user_code: created.userCode,
        verification_uri: `${issuer}/device`,
        verification_uri_complete: `${issuer}/device?user_code=${encodeURIComponent(created.userCode)}`,
        expires_in: created.expiresIn,
        interval: created.interval,
      };
    },
  );

  // --- Metadata and keys -------------------------------------------------------------------------
  const document = metadata(issuer);
  for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    oauth.get(path, { schema: { tags: ['oauth'], summary: 'Authorization server metadata (RFC 8414)' } }, async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return document;
    });
  }
  oauth.get(
    '/oauth/jwks',
    { schema: { tags: ['oauth'], summary: 'Public keys of JWT access tokens (RFC 7517)' } },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=60');
      return rt.keys.jwks();
    },
  );
}
