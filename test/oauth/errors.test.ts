import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueAuthorizationCode } from '../../src/oauth/codes.js';
import { sha256 } from '../../src/security/tokens.js';
import { type OAuthTestServer, basic, passwordToken, postForm, startOAuthServer } from './support/oauth-server.js';

/** One test per error case of RFC 6749 §5.2 (token endpoint) and RFC 6750 §3.1 (protected resources). */

let server: OAuthTestServer;
beforeAll(async () => {
  server = await startOAuthServer();
});
afterAll(async () => server?.stop());

const M2M = basic('acme-m2m', 'acme-m2m-secret');
const WEB = basic('acme-web', 'acme-web-secret');

async function expectOAuthError(res: Response, status: number, error: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  expect(res.headers.get('cache-control')).toBe('no-store');
  expect(res.headers.get('pragma')).toBe('no-cache');
  const body = JSON.parse(text) as Record<string, unknown>;
  expect(body.error).toBe(error);
  expect(body.error_description).toEqual(expect.any(String));
  return body;
}

const token = (params: Record<string, string>, headers: Record<string, string> = {}) => postForm(server, '/oauth/token', params, headers);

async function userId(email: string): Promise<string> {
  return (await server.running.database.db.selectFrom('users').select('id').where('email', '=', email).executeTakeFirstOrThrow()).id;
}

async function webCode(overrides: { codeChallenge?: string } = {}): Promise<string> {
  const db = server.running.database.db;
  const web = await db
    .selectFrom('oauth_clients')
    .select(['id', 'organization_id'])
    .where('client_id', '=', 'acme-web')
    .executeTakeFirstOrThrow();
  return issueAuthorizationCode(db, {
    clientPk: web.id,
    organizationId: web.organization_id,
    userId: await userId('admin@acme.test'),
    redirectUri: 'http://127.0.0.1:9876/callback',
    scopes: ['devices:read'],
    scopeDisplay: 'devices:read',
    codeChallenge: overrides.codeChallenge,
    codeChallengeMethod: overrides.codeChallenge ? 'S256' : undefined,
  });
}

describe('RFC 6749 §5.2 invalid_request', () => {
  it('missing grant_type', async () => {
    await expectOAuthError(await token({ scope: 'app' }, { authorization: M2M }), 400, 'invalid_request');
  });

  it('a repeated parameter', async () => {
    const res = await server.fetch('/oauth/token', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: M2M },
      body: 'grant_type=client_credentials&scope=app&scope=basic',
    });
    await expectOAuthError(res, 400, 'invalid_request');
  });

  it('a parameter given differently in the query string and the body', async () => {
    const res = await server.fetch('/oauth/token?grant_type=password', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: M2M },
      body: '{"grant_type":"client_credentials"}',
    });
    await expectOAuthError(res, 400, 'invalid_request');
  });

  it('a wrong method on a token endpoint is 405 with Allow, still in RFC 6749 JSON', async () => {
    for (const [method, path] of [
      ['GET', '/oauth/token'],
      ['PUT', '/oauth2/token'],
      ['GET', '/auth/oauth'],
      ['GET', '/oauth/revoke'],
      ['DELETE', '/oauth/introspect'],
    ] as const) {
      const res = await fetch(`${server.url}${path}`, { method });
      const body = await expectOAuthError(res, 405, 'invalid_request');
      expect(res.headers.get('allow')).toContain('POST');
      expect(body.error_description).toContain(method);
    }
  });

  it('a malformed JSON body is invalid_request JSON, not problem+json', async () => {
    const res = await server.fetch('/oauth/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: M2M },
      body: '{"grant_type": ',
    });
    await expectOAuthError(res, 400, 'invalid_request');
  });

  it('an unsupported body media type', async () => {
    const res = await server.fetch('/oauth/token', {
      method: 'POST',
      headers: { 'content-type': 'text/plain', authorization: M2M },
      body: 'grant_type=client_credentials',
    });
    await expectOAuthError(res, 400, 'invalid_request');
  });

  it('a JSON body that is not an object', async () => {
    const res = await server.fetch('/oauth/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: M2M },
      body: '["grant_type"]',
    });
    await expectOAuthError(res, 400, 'invalid_request');
  });

  it('more than one client authentication method (RFC 6749 §2.3)', async () => {
    await expectOAuthError(
      await token({ grant_type: 'client_credentials', client_secret: 'acme-m2m-secret' }, { authorization: M2M }),
      400,
      'invalid_request',
    );
  });

  it('a missing grant parameter (password without password, authorization_code without code, refresh_token without refresh_token)', async () => {
    await expectOAuthError(
      await token(
        { grant_type: 'password', username: 'admin@acme.test' },
        { authorization: basic('acme-password', 'acme-password-secret') },
      ),
      400,
      'invalid_request',
    );
    await expectOAuthError(
      await token({ grant_type: 'authorization_code', redirect_uri: 'http://127.0.0.1:9876/callback' }, { authorization: WEB }),
      400,
      'invalid_request',
    );
    await expectOAuthError(
      await token({ grant_type: 'refresh_token' }, { authorization: basic('acme-password', 'acme-password-secret') }),
      400,
      'invalid_request',
    );
  });

  it('a malformed code_verifier (RFC 7636 §4.1)', async () => {
    await expectOAuthError(
      await token({ grant_type: 'authorization_code', code: await webCode(), code_verifier: 'short' }, { authorization: WEB }),
      400,
      'invalid_request',
    );
  });
});

describe('RFC 6749 §5.2 invalid_client', () => {
  it('unknown client with HTTP Basic: 401 and the Basic challenge', async () => {
    const res = await token({ grant_type: 'client_credentials' }, { authorization: basic('no-such-client', 'x') });
    await expectOAuthError(res, 401, 'invalid_client');
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm="sensorcloud"/);
  });

  it('wrong secret with HTTP Basic', async () => {
    const res = await token({ grant_type: 'client_credentials' }, { authorization: basic('acme-m2m', 'wrong') });
    await expectOAuthError(res, 401, 'invalid_client');
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic /);
  });

  it('wrong secret with client_secret_post', async () => {
    const res = await token({ grant_type: 'client_credentials', client_id: 'acme-m2m', client_secret: 'wrong' });
    await expectOAuthError(res, 401, 'invalid_client');
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic /);
  });

  it('no client authentication at all', async () => {
    await expectOAuthError(await token({ grant_type: 'client_credentials' }), 401, 'invalid_client');
  });

  it('a confidential client without its secret', async () => {
    await expectOAuthError(await token({ grant_type: 'client_credentials', client_id: 'acme-m2m' }), 401, 'invalid_client');
  });

  it('malformed Basic credentials', async () => {
    const res = await token({ grant_type: 'client_credentials' }, { authorization: 'Basic !!!not-base64' });
    await expectOAuthError(res, 401, 'invalid_client');
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic /);
  });

  it('a public client presenting a secret', async () => {
    await expectOAuthError(
      await token({ grant_type: 'authorization_code', code: 'x' }, { authorization: basic('acme-spa', 'anything') }),
      401,
      'invalid_client',
    );
  });
});

describe('RFC 6749 §5.2 invalid_grant', () => {
  it('a person whose membership of the organization is deactivated (right password)', async () => {
    const db = server.running.database.db;
    const viewer = await userId('viewer@acme.test');
    const setDeactivated = (at: Date | null) =>
      db.updateTable('memberships').set({ deactivated_at: at }).where('user_id', '=', viewer).execute();
    await setDeactivated(new Date());
    try {
      const params = { grant_type: 'password', username: 'viewer@acme.test', password: 'V1ewer-pass-acme' };
      await expectOAuthError(await token(params, { authorization: basic('acme-password', 'acme-password-secret') }), 400, 'invalid_grant');
    } finally {
      await setDeactivated(null);
    }
  });

  it('wrong resource owner password', async () => {
    await expectOAuthError(
      await token(
        { grant_type: 'password', username: 'admin@acme.test', password: 'wrong-password' },
        { authorization: basic('acme-password', 'acme-password-secret') },
      ),
      400,
      'invalid_grant',
    );
  });

  it('unknown authorization code', async () => {
    await expectOAuthError(
      await token(
        { grant_type: 'authorization_code', code: 'sc_ac_nope', redirect_uri: 'http://127.0.0.1:9876/callback' },
        { authorization: WEB },
      ),
      400,
      'invalid_grant',
    );
  });

  it('redirect_uri differing from the authorization request', async () => {
    await expectOAuthError(
      await token(
        { grant_type: 'authorization_code', code: await webCode(), redirect_uri: 'http://127.0.0.1:9876/other' },
        { authorization: WEB },
      ),
      400,
      'invalid_grant',
    );
  });

  it('code_verifier not matching the code_challenge', async () => {
    const challenge = createHash('sha256').update('a'.repeat(43)).digest('base64url');
    const code = await webCode({ codeChallenge: challenge });
    await expectOAuthError(
      await token(
        { grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:9876/callback', code_verifier: 'b'.repeat(43) },
        { authorization: WEB },
      ),
      400,
      'invalid_grant',
    );
    // The failed attempt spent the code: the right verifier no longer works either.
    await expectOAuthError(
      await token(
        { grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:9876/callback', code_verifier: 'a'.repeat(43) },
        { authorization: WEB },
      ),
      400,
      'invalid_grant',
    );
  });

  it('an expired authorization code', async () => {
    const code = await webCode();
    await server.running.database.db
      .updateTable('oauth_authorization_codes')
      .set({ expires_at: sql<Date>`now() - interval '1 second'` })
      .where('code_hash', '=', sha256(code))
      .execute();
    await expectOAuthError(
      await token({ grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:9876/callback' }, { authorization: WEB }),
      400,
      'invalid_grant',
    );
  });

  it('a code issued to another client', async () => {
    await expectOAuthError(
      await token({
        grant_type: 'authorization_code',
        code: await webCode(),
        redirect_uri: 'http://127.0.0.1:9876/callback',
        client_id: 'acme-spa',
      }),
      400,
      'invalid_grant',
    );
  });

  it('a refresh token of another client', async () => {
    const tokens = await passwordToken(server);
    await expectOAuthError(
      await token(
        { grant_type: 'refresh_token', refresh_token: tokens.refresh_token },
        { authorization: basic('acme-jwt', 'acme-jwt-secret') },
      ),
      400,
      'invalid_grant',
    );
  });
});

describe('RFC 6749 §5.2 unauthorized_client, unsupported_grant_type, invalid_scope', () => {
  it('unauthorized_client: a grant type the client is not registered for', async () => {
    await expectOAuthError(
      await token({ grant_type: 'password', username: 'admin@acme.test', password: 'Adm1n-pass-acme' }, { authorization: M2M }),
      400,
      'unauthorized_client',
    );
  });

  it('unsupported_grant_type', async () => {
    await expectOAuthError(await token({ grant_type: 'implicit' }, { authorization: M2M }), 400, 'unsupported_grant_type');
  });

  it('invalid_scope: a scope the client may not have, and an unknown scope', async () => {
    await expectOAuthError(
      await token({ grant_type: 'client_credentials', scope: 'users:write' }, { authorization: M2M }),
      400,
      'invalid_scope',
    );
    await expectOAuthError(
      await token({ grant_type: 'client_credentials', scope: 'devices:read telepathy' }, { authorization: M2M }),
      400,
      'invalid_scope',
    );
  });
});

describe('revocation and introspection errors', () => {
  it('revocation without token is invalid_request; an unknown token_type_hint is unsupported_token_type', async () => {
    await expectOAuthError(await postForm(server, '/oauth/revoke', {}, { authorization: M2M }), 400, 'invalid_request');
    await expectOAuthError(
      await postForm(server, '/oauth/revoke', { token: 'x', token_type_hint: 'id_token' }, { authorization: M2M }),
      400,
      'unsupported_token_type',
    );
  });

  it('introspection requires client authentication (RFC 7662 §2.1)', async () => {
    const res = await postForm(server, '/oauth/introspect', { token: 'x' });
    await expectOAuthError(res, 401, 'invalid_client');
    await expectOAuthError(await postForm(server, '/oauth/introspect', { token: 'x', client_id: 'acme-spa' }), 401, 'invalid_client');
  });
});

describe('RFC 6750 §3.1 on protected resources', () => {
  const challenge = (res: Response) => res.headers.get('www-authenticate') ?? '';

  it('no credentials: 401 with a challenge and no error code', async () => {
    for (const path of ['/v1/api-keys', '/oauth/token/info']) {
      const res = await server.fetch(path);
      expect(res.status).toBe(401);
      expect(challenge(res)).toMatch(/^Bearer realm="sensorcloud"/);
      expect(challenge(res)).not.toMatch(/error=/);
    }
  });

  it('invalid_request: a malformed Authorization header is 400', async () => {
    for (const path of ['/v1/api-keys', '/oauth/token/info']) {
      const res = await server.fetch(path, { headers: { authorization: 'Bearer two tokens' } });
      expect(res.status).toBe(400);
      expect(challenge(res)).toMatch(/error="invalid_request"/);
    }
  });

  it('invalid_token: unknown, expired and revoked tokens', async () => {
    const expired = await passwordToken(server);
    await server.running.database.db
      .updateTable('oauth_access_tokens')
      .set({ expires_at: sql<Date>`now() - interval '1 second'` })
      .where('token_hash', '=', sha256(expired.access_token))
      .execute();
    const revoked = await passwordToken(server);
    await postForm(
      server,
      '/oauth/revoke',
      { token: revoked.access_token },
      { authorization: basic('acme-password', 'acme-password-secret') },
    );
    for (const bad of [
      'sc_at_unknown',
      expired.access_token,
      revoked.access_token,
      'sk_live_unknownunknownunknownunknown',
      'eyJhbGciOiJub25lIn0.e30.',
    ]) {
      for (const path of ['/v1/api-keys', '/oauth/token/info']) {
        const res = await server.fetch(path, { headers: { authorization: `Bearer ${bad}` } });
        expect(res.status, `${path} ${bad}`).toBe(401);
        expect(challenge(res)).toMatch(/error="invalid_token"/);
      }
    }
    const body = (await (await server.fetch('/oauth/token/info', { headers: { authorization: 'Bearer sc_at_unknown' } })).json()) as {
      error: string;
    };
    expect(body.error).toBe('invalid_token');
  });

  it('insufficient_scope: 403 naming the scope needed', async () => {
    const viewer = await passwordToken(server, 'acme-password', 'acme-password-secret', 'viewer@acme.test', 'V1ewer-pass-acme');
    const res = await server.fetch('/v1/api-keys', { headers: { authorization: `Bearer ${viewer.access_token}` } });
    expect(res.status).toBe(403);
    expect(challenge(res)).toMatch(/error="insufficient_scope"/);
    expect(challenge(res)).toMatch(/scope="api_keys:write"/);
  });
});
