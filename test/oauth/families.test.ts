import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueAuthorizationCode } from '../../src/oauth/codes.js';
import { backends } from '../support/databases.js';
import { type OAuthTestServer, basic, passwordToken, postForm, startOAuthServer } from './support/oauth-server.js';

/**
 * Token families: rotation under concurrency, refresh-token reuse (within and after the grace
 * window), refused refreshes leaving the token usable, authorization-code replay, and
 * revocation taking effect at once on this node (and within the 1 s cache TTL on another node).
 */

describe.each(backends)('token families on $name', (backend) => {
  let server: OAuthTestServer;
  beforeAll(async () => {
    server = await startOAuthServer({ backend: backend.name });
  });
  afterAll(async () => server?.stop());

  const PASSWORD_CLIENT = basic('acme-password', 'acme-password-secret');
  const refresh = (refreshToken: string) =>
    postForm(server, '/oauth/token', { grant_type: 'refresh_token', refresh_token: refreshToken }, { authorization: PASSWORD_CLIENT });
  const info = (accessToken: string) => server.fetch('/oauth/token/info', { headers: { authorization: `Bearer ${accessToken}` } });

  // Several rounds: on PostgreSQL the losers queue on the family lock and then find the token spent
  // by a transaction that committed after their snapshot; a mistake there shows up only sometimes.
  it('20 concurrent refreshes of one refresh token: exactly one succeeds, the rest are invalid_grant and revoke nothing (5 rounds)', async () => {
    for (let round = 0; round < 5; round++) {
      const tokens = await passwordToken(server);
      const responses = await Promise.all(Array.from({ length: 20 }, () => refresh(tokens.refresh_token)));
      const statuses = responses.map((r) => r.status);
      expect(statuses.filter((s) => s === 200)).toHaveLength(1);
      expect(statuses.filter((s) => s === 400)).toHaveLength(19);
      const bodies = (await Promise.all(responses.map((r) => r.json()))) as Record<string, any>[];
      for (const body of bodies.filter((b) => b.error)) {
        expect(body.error).toBe('invalid_grant');
        expect(body.error_description).toMatch(/use the tokens of the first refresh/);
      }
      // The losers are duplicates within the grace window: the winner's tokens keep working.
      const winner = bodies.find((b) => b.access_token) as Record<string, any>;
      expect((await info(winner.access_token)).status).toBe(200);
      const next = await refresh(winner.refresh_token);
      expect(next.status).toBe(200);
      expect((await info(((await next.json()) as Record<string, any>).access_token)).status).toBe(200);
    }
  });

  it('a refresh refused for its scope does not spend the token', async () => {
    const tokens = await passwordToken(server, 'acme-other', 'acme-other-secret', 'admin@acme.test', 'Adm1n-pass-acme', 'devices:read');
    const other = basic('acme-other', 'acme-other-secret');
    const wider = await postForm(
      server,
      '/oauth/token',
      { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, scope: 'devices:read readings:read' },
      { authorization: other },
    );
    expect(wider.status).toBe(400);
    expect(((await wider.json()) as { error: string }).error).toBe('invalid_scope');
    const again = await postForm(
      server,
      '/oauth/token',
      { grant_type: 'refresh_token', refresh_token: tokens.refresh_token },
      { authorization: other },
    );
    expect(again.status).toBe(200);
    expect((await info(((await again.json()) as Record<string, any>).access_token)).status).toBe(200);
    expect((await info(tokens.access_token)).status).toBe(200);
  });

  it('presenting a used refresh token within the grace window is refused and revokes nothing', async () => {
    const first = await passwordToken(server);
    const second = (await (await refresh(first.refresh_token)).json()) as Record<string, any>;
    const replay = await refresh(first.refresh_token);
    expect(replay.status).toBe(400);
    expect(((await replay.json()) as { error: string }).error).toBe('invalid_grant');
    expect((await info(second.access_token)).status).toBe(200);
    expect((await refresh(second.refresh_token)).status).toBe(200);
  });

  it('replaying an authorization code revokes the tokens issued with it', async () => {
    const db = server.running.database.db;
    const web = await db
      .selectFrom('oauth_clients')
      .select(['id', 'organization_id'])
      .where('client_id', '=', 'acme-web')
      .executeTakeFirstOrThrow();
    const admin = await db.selectFrom('users').select('id').where('email', '=', 'admin@acme.test').executeTakeFirstOrThrow();
    const code = await issueAuthorizationCode(db, {
      clientPk: web.id,
      organizationId: web.organization_id,
      userId: admin.id,
      redirectUri: 'http://127.0.0.1:9876/callback',
      scopes: ['devices:read', 'offline_access'],
      scopeDisplay: 'devices:read offline_access',
    });
    const exchange = () =>
      postForm(
        server,
        '/oauth/token',
        { grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:9876/callback' },
        { authorization: basic('acme-web', 'acme-web-secret') },
      );
    const first = await exchange();
    expect(first.status).toBe(200);
    const tokens = (await first.json()) as Record<string, any>;
    expect((await info(tokens.access_token)).status).toBe(200);
    const replay = await exchange();
    expect(replay.status).toBe(400);
    expect(((await replay.json()) as { error: string }).error).toBe('invalid_grant');
    expect((await info(tokens.access_token)).status).toBe(401);
    const refreshAfter = await postForm(
      server,
      '/oauth/token',
      { grant_type: 'refresh_token', refresh_token: tokens.refresh_token },
      { authorization: basic('acme-web', 'acme-web-secret') },
    );
    expect(refreshAfter.status).toBe(400);
  });

  it('concurrent redemptions of one code: exactly one gets tokens, and those are revoked', async () => {
    const db = server.running.database.db;
    const web = await db
      .selectFrom('oauth_clients')
      .select(['id', 'organization_id'])
      .where('client_id', '=', 'acme-web')
      .executeTakeFirstOrThrow();
    const admin = await db.selectFrom('users').select('id').where('email', '=', 'admin@acme.test').executeTakeFirstOrThrow();
    const code = await issueAuthorizationCode(db, {
      clientPk: web.id,
      organizationId: web.organization_id,
      userId: admin.id,
      redirectUri: 'http://127.0.0.1:9876/callback',
      scopes: ['devices:read'],
      scopeDisplay: 'devices:read',
    });
    const responses = await Promise.all(
      Array.from({ length: 5 }, () =>
        postForm(
          server,
          '/oauth/token',
          { grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:9876/callback' },
          { authorization: basic('acme-web', 'acme-web-secret') },
        ),
      ),
    );
    const ok = responses.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    const tokens = (await ok[0]!.json()) as Record<string, any>;
    expect((await info(tokens.access_token)).status).toBe(401);
  });

  it('revocation takes effect at once on this node, despite the bearer cache', async () => {
    const tokens = await passwordToken(server);
    expect((await info(tokens.access_token)).status).toBe(200); // now cached for up to 1 s
    const revoke = await postForm(
      server,
      '/oauth/revoke',
      { token: tokens.access_token, token_type_hint: 'access_token' },
      { authorization: PASSWORD_CLIENT },
    );
    expect(revoke.status).toBe(200);
    expect((await info(tokens.access_token)).status).toBe(401);

    const other = await passwordToken(server);
    expect((await info(other.access_token)).status).toBe(200);
    await postForm(server, '/oauth/revoke', { token: other.refresh_token }, { authorization: PASSWORD_CLIENT });
    expect((await info(other.access_token)).status).toBe(401);

    const third = await passwordToken(server);
    expect((await info(third.access_token)).status).toBe(200);
    expect(
      (await server.fetch('/oauth/token', { method: 'DELETE', headers: { authorization: `Bearer ${third.access_token}` } })).status,
    ).toBe(200);
    expect((await info(third.access_token)).status).toBe(401);
  });

  it.runIf(backend.name === 'postgres')('another node sharing the database stops honouring a revoked token within 1 s', async () => {
    const nodeB = await startOAuthServer({ backend: 'postgres', databaseUrl: server.databaseUrl });
    try {
      const tokens = await passwordToken(server);
      const onB = () => nodeB.fetch('/oauth/token/info', { headers: { authorization: `Bearer ${tokens.access_token}` } });
      expect((await onB()).status).toBe(200);
      await postForm(server, '/oauth/revoke', { token: tokens.access_token }, { authorization: PASSWORD_CLIENT });
      expect((await info(tokens.access_token)).status).toBe(401);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      expect((await onB()).status).toBe(401);
    } finally {
      await nodeB.stop();
    }
  });

  describe('with a 1 s reuse grace window', () => {
    let short: OAuthTestServer;
    beforeAll(async () => {
      short = await startOAuthServer({ backend: backend.name, env: { OAUTH_REFRESH_REUSE_GRACE: '1' } });
    });
    afterAll(async () => short?.stop());

    it('presenting a used refresh token after the window revokes the whole family (RFC 9700 §4.14.2)', async () => {
      const refreshOn = (refreshToken: string) =>
        postForm(short, '/oauth/token', { grant_type: 'refresh_token', refresh_token: refreshToken }, { authorization: PASSWORD_CLIENT });
      const infoOn = (accessToken: string) => short.fetch('/oauth/token/info', { headers: { authorization: `Bearer ${accessToken}` } });
      const first = await passwordToken(short);
      const second = (await (await refreshOn(first.refresh_token)).json()) as Record<string, any>;
      expect(second.refresh_token).toMatch(/^sc_rt_/);
      expect((await infoOn(second.access_token)).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 1300));
      const replay = await refreshOn(first.refresh_token);
      expect(replay.status).toBe(400);
      expect(((await replay.json()) as { error_description: string }).error_description).toMatch(
        /every token of this grant has been revoked/,
      );
      expect((await infoOn(second.access_token)).status).toBe(401);
      expect((await infoOn(first.access_token)).status).toBe(401);
      expect((await refreshOn(second.refresh_token)).status).toBe(400);
    });
  });
});
