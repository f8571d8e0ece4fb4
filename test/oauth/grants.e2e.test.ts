import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideDeviceCode, findPendingDeviceCode } from '../../src/oauth/device-codes.js';
import { SigningKeyStore } from '../../src/oauth/tokens/jwt.js';
import { rotateSigningKeys } from '../../src/oauth/tokens/signing-keys.repo.js';
import { Browser } from '../support/browser.js';
import { backends } from '../support/databases.js';
import { type OAuthTestServer, basic, passwordToken, postForm, publicClientFlow, startOAuthServer } from './support/oauth-server.js';

/**
 * Every grant end to end over real HTTP, driven by two strict client libraries: openid-client v6
 * and oauth4webapi v3 (both validate issuer, content types and response members). The
 * authorization-code flow goes through the real login and consent pages. The vendors' documented
 * flows (seeds/000-004) are replayed one file per vendor in test/vendors/.
 */

describe.each(backends)('grants on $name', (backend) => {
  let server: OAuthTestServer;
  const insecure = { execute: [client.allowInsecureRequests] };
  const as = () => ({ [oauth.allowInsecureRequests]: true }) as const;
  let authServer: oauth.AuthorizationServer;

  beforeAll(async () => {
    server = await startOAuthServer({ backend: backend.name, env: { OAUTH_DEVICE_INTERVAL: '1' } });
    const issuer = new URL(server.url);
    authServer = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...as() }));
  });
  afterAll(async () => server?.stop());

  const tokenInfo = (token: string) => server.fetch('/oauth/token/info', { headers: { authorization: `Bearer ${token}` } });

  it('publishes RFC 8414 metadata at both well-known paths with the issuer exactly the public URL', async () => {
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
      const res = await server.fetch(path);
      expect(res.status).toBe(200);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body.issuer).toBe(server.url);
      expect(body.token_endpoint).toBe(`${server.url}/oauth/token`);
      expect(body.code_challenge_methods_supported).toEqual(['S256']);
      expect(body.grant_types_supported).toContain('urn:ietf:params:oauth:grant-type:device_code');
    }
    expect(authServer.issuer).toBe(server.url);
    const config = await client.discovery(
      new URL(server.url),
      'acme-m2m',
      'acme-m2m-secret',
      client.ClientSecretBasic('acme-m2m-secret'),
      insecure,
    );
    expect(config.serverMetadata().issuer).toBe(server.url);
  });

  describe('client_credentials', () => {
    it('works with openid-client (client_secret_basic) and the token authenticates', async () => {
      const config = await client.discovery(
        new URL(server.url),
        'acme-m2m',
        'acme-m2m-secret',
        client.ClientSecretBasic('acme-m2m-secret'),
        insecure,
      );
      const tokens = await client.clientCredentialsGrant(config, { scope: 'app' });
      expect(tokens.access_token).toMatch(/^sc_at_/);
      expect(tokens.token_type.toLowerCase()).toBe('bearer');
      expect(tokens.expires_in).toBe(3600);
      expect(tokens.scope).toBe('app');
      expect(tokens.refresh_token).toBeUndefined();
      const info = await tokenInfo(tokens.access_token);
      expect(info.status).toBe(200);
    });

    it('works with oauth4webapi (client_secret_post)', async () => {
      const c: oauth.Client = { client_id: 'acme-m2m' };
      const response = await oauth.clientCredentialsGrantRequest(
        authServer,
        c,
        oauth.ClientSecretPost('acme-m2m-secret'),
        new URLSearchParams({ scope: 'devices:read' }),
        as(),
      );
      const result = await oauth.processClientCredentialsResponse(authServer, c, response);
      expect(result.access_token).toMatch(/^sc_at_/);
      expect(result.scope).toBe('devices:read');
    });

    it('form-decodes the Basic credentials (RFC 6749 §2.3.1) of a client whose id and secret need it', async () => {
      const config = await client.discovery(
        new URL(server.url),
        'acme:odd%id',
        's3cr%t+with:colon',
        client.ClientSecretBasic('s3cr%t+with:colon'),
        insecure,
      );
      const tokens = await client.clientCredentialsGrant(config, { scope: 'devices:read' });
      expect(tokens.access_token).toMatch(/^sc_at_/);
    });
  });

  describe('password', () => {
    it('issues access and refresh tokens, and the refresh token rotates (openid-client)', async () => {
      const config = await client.discovery(
        new URL(server.url),
        'acme-password',
        'acme-password-secret',
        client.ClientSecretBasic('acme-password-secret'),
        insecure,
      );
      const tokens = await client.genericGrantRequest(config, 'password', {
        username: 'admin@acme.test',
        password: 'Adm1n-pass-acme',
        scope: '*',
      });
      expect(tokens.access_token).toMatch(/^sc_at_/);
      expect(tokens.refresh_token).toMatch(/^sc_rt_/);
      expect(tokens.expires_in).toBe(31536000);
      expect(tokens.scope).toBe('*');
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token as string);
      expect(refreshed.refresh_token).toMatch(/^sc_rt_/);
      expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
      expect(refreshed.access_token).not.toBe(tokens.access_token);
      expect((await tokenInfo(refreshed.access_token)).status).toBe(200);
      // The rotated-out refresh token is spent.
      await expect(client.refreshTokenGrant(config, tokens.refresh_token as string)).rejects.toMatchObject({ error: 'invalid_grant' });
    });

    it('refreshes with a narrower scope and refuses a wider one (oauth4webapi)', async () => {
      const c: oauth.Client = { client_id: 'acme-password' };
      const auth = oauth.ClientSecretBasic('acme-password-secret');
      const first = await passwordToken(server);
      const narrowed = await oauth.processRefreshTokenResponse(
        authServer,
        c,
        await oauth.refreshTokenGrantRequest(authServer, c, auth, first.refresh_token, {
          ...as(),
          additionalParameters: { scope: 'devices:read' },
        }),
      );
      expect(narrowed.scope).toBe('devices:read');
      const wider = await oauth.refreshTokenGrantRequest(authServer, c, auth, narrowed.refresh_token as string, {
        ...as(),
        additionalParameters: { scope: 'devices:read no:such' },
      });
      await expect(oauth.processRefreshTokenResponse(authServer, c, wider)).rejects.toMatchObject({ error: 'invalid_scope' });
    });
  });

  describe('authorization_code through the login and consent pages', () => {
    it('confidential client with PKCE and offline_access (openid-client)', async () => {
      const config = await client.discovery(
        new URL(server.url),
        'acme-web',
        'acme-web-secret',
        client.ClientSecretBasic('acme-web-secret'),
        insecure,
      );
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: 'http://127.0.0.1:9876/callback',
        scope: 'devices:read readings:read offline_access',
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
      });
      const callback = await new Browser(server.url).authorize(url.href, 'admin@acme.test', 'Adm1n-pass-acme');
      expect(callback.origin + callback.pathname).toBe('http://127.0.0.1:9876/callback');
      const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state });
      expect(tokens.access_token).toMatch(/^sc_at_/);
      expect(tokens.refresh_token).toMatch(/^sc_rt_/);
      expect(tokens.scope).toBe('devices:read readings:read offline_access');
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token as string);
      expect(refreshed.access_token).toMatch(/^sc_at_/);
    });

    it('public client, PKCE required, no secret (oauth4webapi)', async () => {
      const result = await publicClientFlow(server, authServer, {
        clientId: 'acme-spa',
        redirectUri: 'http://127.0.0.1:9876/spa',
        scope: 'readings:read',
        email: 'viewer@acme.test',
        password: 'V1ewer-pass-acme',
      });
      expect(result.access_token).toMatch(/^sc_at_/);
      expect(result.refresh_token).toBeUndefined();
      expect(result.scope).toBe('readings:read');
    });
  });

  describe('device authorization (RFC 8628)', () => {
    it('polls pending, then gets tokens after the user approves (openid-client)', async () => {
      const config = await client.discovery(
        new URL(server.url),
        'acme-device',
        { token_endpoint_auth_method: 'none' },
        client.None(),
        insecure,
      );
      const started = await client.initiateDeviceAuthorization(config, { scope: 'devices:read readings:read' });
      expect(started.verification_uri).toBe(`${server.url}/device`);
      expect(started.verification_uri_complete).toContain(encodeURIComponent(started.user_code));
      expect(started.interval).toBe(1);
      // A poll before approval: authorization_pending.
      const early = await postForm(server, '/oauth/token', {
        grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
        device_code: started.device_code,
        client_id: 'acme-device',
      });
      expect(early.status).toBe(400);
      expect(((await early.json()) as { error: string }).error).toBe('authorization_pending');

      const db = server.running.database.db;
      const pending = await findPendingDeviceCode(db, started.user_code.toLowerCase());
      expect(pending?.clientId).toBe('acme-device');
      const admin = await db.selectFrom('users').select('id').where('email', '=', 'admin@acme.test').executeTakeFirstOrThrow();
      expect(
        await decideDeviceCode(db, started.user_code, {
          userId: admin.id,
          organizationId: pending!.organizationId,
          approve: true,
          scopes: ['devices:read', 'readings:read'],
          scopeDisplay: 'devices:read readings:read',
        }),
      ).toBe(true);
      const tokens = await client.pollDeviceAuthorizationGrant(config, started);
      expect(tokens.access_token).toMatch(/^sc_at_/);
      expect(tokens.refresh_token).toMatch(/^sc_rt_/);
      expect(tokens.scope).toBe('devices:read readings:read');
      // Redeemed once.
      const again = await postForm(server, '/oauth/token', {
        grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
        device_code: started.device_code,
        client_id: 'acme-device',
      });
      expect(((await again.json()) as { error: string }).error).toBe('invalid_grant');
    }, 20_000);

    it('answers slow_down when polled faster than the interval, and access_denied after a denial', async () => {
      const start = await postForm(server, '/oauth/device_authorization', { client_id: 'acme-device' });
      expect(start.status).toBe(200);
      const started = (await start.json()) as Record<string, any>;
      const poll = () =>
        postForm(server, '/oauth/token', {
          grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
          device_code: started.device_code,
          client_id: 'acme-device',
        });
      expect(((await (await poll()).json()) as { error: string }).error).toBe('authorization_pending');
      const fast = (await (await poll()).json()) as { error: string; interval: number };
      expect(fast.error).toBe('slow_down');
      expect(fast.interval).toBe(6);
      const db = server.running.database.db;
      const pending = await findPendingDeviceCode(db, started.user_code);
      const admin = await db.selectFrom('users').select('id').where('email', '=', 'admin@acme.test').executeTakeFirstOrThrow();
      await decideDeviceCode(db, started.user_code, {
        userId: admin.id,
        organizationId: pending!.organizationId,
        approve: false,
        scopes: [],
        scopeDisplay: '',
      });
      expect(((await (await poll()).json()) as { error: string }).error).toBe('access_denied');
    });
  });

  describe('JWT access tokens (RFC 9068)', () => {
    it('are signed JWTs with typ at+jwt, verifiable with the JWKS, revocable, and survive a key rotation', async () => {
      const c: oauth.Client = { client_id: 'acme-jwt' };
      const auth = oauth.ClientSecretBasic('acme-jwt-secret');
      const issue = async () =>
        oauth.processClientCredentialsResponse(
          authServer,
          c,
          await oauth.clientCredentialsGrantRequest(authServer, c, auth, new URLSearchParams({ scope: 'app' }), as()),
        );
      const first = await issue();
      expect(first.access_token.startsWith('eyJ')).toBe(true);
      const jwks = createRemoteJWKSet(new URL('/oauth/jwks', server.url));
      const { payload, protectedHeader } = await jwtVerify(first.access_token, jwks, {
        issuer: server.url,
        audience: server.url,
        typ: 'at+jwt',
      });
      expect(protectedHeader.alg).toBe('RS256');
      expect(payload).toMatchObject({ client_id: 'acme-jwt', sub: 'acme-jwt' });
      expect(payload.jti).toEqual(expect.any(String));
      expect(payload.exp! - payload.iat!).toBe(600);
      expect((await tokenInfo(first.access_token)).status).toBe(200);

      // Rotation: a new key signs, the old one stays published, the old token keeps working.
      const rotation = await rotateSigningKeys(server.running.database.db);
      expect(rotation.retired.map((r) => r.kid)).toContain(protectedHeader.kid);
      const published = (await (await server.fetch('/oauth/jwks')).json()) as { keys: { kid: string }[] };
      expect(published.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([rotation.kid, protectedHeader.kid as string]));
      expect(published.keys.every((k) => !('d' in k))).toBe(true);
      expect((await tokenInfo(first.access_token)).status).toBe(200);

      // Revocation by jti.
      await oauth.processRevocationResponse(await oauth.revocationRequest(authServer, c, auth, first.access_token, as()));
      expect((await tokenInfo(first.access_token)).status).toBe(401);
      // Nodes pick the new key up on their next key read (within a minute); a fresh store signs with it.
      const store = new SigningKeyStore(server.running.database.db, server.url);
      const signed = await store.sign(
        { sub: 'x', clientId: 'acme-jwt', scope: 'devices:read', organizationId: 'o', jti: 'j', issuedAt: 1, expiresAt: 2 },
        server.url,
      );
      expect(decodeProtectedHeader(signed).kid).toBe(rotation.kid);
      const second = await issue();
      expect((await tokenInfo(second.access_token)).status).toBe(200);
    });

    it('password grant JWTs name the user as sub', async () => {
      const tokens = await passwordToken(server, 'acme-jwt', 'acme-jwt-secret', 'viewer@acme.test', 'V1ewer-pass-acme', 'devices:read');
      const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString()) as Record<string, unknown>;
      const viewer = await server.running.database.db
        .selectFrom('users')
        .select('id')
        .where('email', '=', 'viewer@acme.test')
        .executeTakeFirstOrThrow();
      expect(claims.sub).toBe(viewer.id);
      expect(claims.scope).toBe('devices:read');
    });
  });

  describe('revocation and introspection', () => {
    it('introspection (openid-client) shows an active token to its client, inactive after revocation (RFC 7009)', async () => {
      const config = await client.discovery(
        new URL(server.url),
        'acme-password',
        'acme-password-secret',
        client.ClientSecretBasic('acme-password-secret'),
        insecure,
      );
      const tokens = await passwordToken(server);
      const active = await client.tokenIntrospection(config, tokens.access_token);
      expect(active.active).toBe(true);
      expect(active.client_id).toBe('acme-password');
      expect(active.username).toBe('admin@acme.test');
      expect(active.token_type).toBe('Bearer');
      const refresh = await client.tokenIntrospection(config, tokens.refresh_token, { token_type_hint: 'refresh_token' });
      expect(refresh.active).toBe(true);
      await client.tokenRevocation(config, tokens.refresh_token, { token_type_hint: 'refresh_token' });
      // Revoking the refresh token revoked its family's access tokens.
      expect((await client.tokenIntrospection(config, tokens.access_token)).active).toBe(false);
      expect((await tokenInfo(tokens.access_token)).status).toBe(401);
      // Unknown tokens: 200 on revocation, inactive on introspection.
      await client.tokenRevocation(config, 'sc_at_doesnotexist');
      expect(await client.tokenIntrospection(config, 'garbage')).toEqual({ active: false });
    });

    it("a client cannot introspect another client's token unless it is a resource server of that organization", async () => {
      const tokens = await passwordToken(server);
      const as = (id: string, secret: string) =>
        postForm(server, '/oauth/introspect', { token: tokens.access_token }, { authorization: basic(id, secret) }).then(
          (r) => r.json() as Promise<Record<string, unknown>>,
        );
      expect((await as('acme-m2m', 'acme-m2m-secret')).active).toBe(false);
      expect((await as('acme-rs', 'acme-rs-secret')).active).toBe(true);
      expect((await as('globex-rs', 'globex-rs-secret')).active).toBe(false);
    });

    it("refuses to revoke another client's token", async () => {
      const tokens = await passwordToken(server);
      const res = await postForm(
        server,
        '/oauth/revoke',
        { token: tokens.access_token },
        { authorization: basic('acme-m2m', 'acme-m2m-secret') },
      );
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toBe('unauthorized_client');
      expect((await tokenInfo(tokens.access_token)).status).toBe(200);
    });
  });
});
