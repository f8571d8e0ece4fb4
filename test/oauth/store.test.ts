import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { issueAuthorizationCode } from '../../src/oauth/codes.js';
import {
  createDeviceAuthorization,
  decideDeviceCode,
  findPendingDeviceCode,
  formatUserCode,
  normalizeUserCode,
} from '../../src/oauth/device-codes.js';
import { saveClient } from '../../src/oauth/clients.repo.js';
import { ensureCurrentKey, listPublishedKeys, purgeRetiredKeys, rotateSigningKeys } from '../../src/oauth/tokens/signing-keys.repo.js';
import { randomUUID } from 'node:crypto';
import { GroupCommit } from '../../src/storage/group-commit.js';
import {
  type NewIssuance,
  findActiveAccessToken,
  findRefreshToken,
  insertAccessToken,
  insertGrant,
  insertGrantsWithTokens,
  insertRefreshToken,
  purgeExpired,
} from '../../src/oauth/tokens/tokens.repo.js';
import { upsertOrganization } from '../../src/identity/organizations.repo.js';
import { saveMember } from '../../src/identity/accounts.js';
import { backends, countRows, useDatabase } from '../support/databases.js';

/** The token store's housekeeping and the code/device-code stores, on every backend. */

describe.each(backends)('token store on $name', (backend) => {
  const database = useDatabase(backend);

  async function fixture() {
    const db = database.db;
    const org = await upsertOrganization(db, { slug: `org-${Math.random().toString(36).slice(2, 8)}`, name: 'Org' });
    const user = await saveMember(db, org.id, { email: `u-${org.slug}@test.test`, role: 'admin' });
    const { client } = await saveClient(db, org.id, {
      clientId: `client-${org.slug}`,
      name: 'C',
      secretHash: null,
      public: true,
      grantTypes: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
      scopes: ['devices:read'],
      redirectUris: ['http://x.test/cb'],
      privacyPolicyUrl: null,
      accessTokenTtl: 3600,
      refreshTokenTtl: null,
      tokenFormat: 'opaque',
      boundUserId: null,
      userAuth: 'password',
      resourceServer: false,
    });
    return { db, org, user, client };
  }

  it('purges expired tokens, old codes and finished grants, and keeps what is live', async () => {
    const { db, org, user, client } = await fixture();
    const past = new Date(Date.now() - 60_000);
    const future = new Date(Date.now() + 3_600_000);
    const grant = (userId: string | null) =>
      insertGrant(db, {
        organizationId: org.id,
        clientPk: client.id,
        userId,
        grantType: 'authorization_code',
        scopes: ['devices:read'],
        scopeDisplay: 'devices:read',
      });
    const finished = await grant(user.id);
    await insertAccessToken(db, {
      tokenHash: `expired-${org.id}`,
      grantId: finished,
      organizationId: org.id,
      clientPk: client.id,
      userId: user.id,
      scopes: ['devices:read'],
      scopeDisplay: 'devices:read',
      createdAt: past,
      expiresAt: past,
    });
    await insertRefreshToken(db, {
      tokenHash: `rt-expired-${org.id}`,
      grantId: finished,
      organizationId: org.id,
      createdAt: past,
      expiresAt: past,
    });
    const live = await grant(user.id);
    await insertAccessToken(db, {
      tokenHash: `live-${org.id}`,
      grantId: live,
      organizationId: org.id,
      clientPk: client.id,
      userId: user.id,
      scopes: ['devices:read'],
      scopeDisplay: 'devices:read',
      createdAt: new Date(),
      expiresAt: future,
    });
    await sql`update oauth_grants set created_at = now() - interval '1 day' where id in (${finished}, ${live})`.execute(db);
    const code = await issueAuthorizationCode(db, {
      clientPk: client.id,
      organizationId: org.id,
      userId: user.id,
      redirectUri: 'http://x.test/cb',
      scopes: ['devices:read'],
      scopeDisplay: 'devices:read',
    });
    expect(code).toMatch(/^sc_ac_/);
    await sql`update oauth_authorization_codes set expires_at = now() - interval '2 hours' where organization_id = ${org.id}`.execute(db);

    const counts = await purgeExpired(db);
    expect(counts.accessTokens).toBeGreaterThanOrEqual(1);
    expect(counts.refreshTokens).toBeGreaterThanOrEqual(1);
    expect(counts.authorizationCodes).toBeGreaterThanOrEqual(1);
    expect(counts.grants).toBeGreaterThanOrEqual(1);
    const grants = await db.selectFrom('oauth_grants').select('id').where('organization_id', '=', org.id).execute();
    expect(grants.map((g) => g.id)).toEqual([live]);
    expect(await db.selectFrom('oauth_access_tokens').select('token_hash').where('organization_id', '=', org.id).execute()).toEqual([
      { token_hash: `live-${org.id}` },
    ]);
  });

  it('refuses plain PKCE and malformed challenges when issuing codes', async () => {
    const { db, org, user, client } = await fixture();
    const base = {
      clientPk: client.id,
      organizationId: org.id,
      userId: user.id,
      redirectUri: 'http://x.test/cb',
      scopes: ['devices:read'],
      scopeDisplay: 'devices:read',
    };
    await expect(issueAuthorizationCode(db, { ...base, codeChallenge: 'a'.repeat(43), codeChallengeMethod: 'plain' })).rejects.toThrow(
      /S256/,
    );
    await expect(issueAuthorizationCode(db, { ...base, codeChallenge: 'a'.repeat(43) })).rejects.toThrow(/S256/);
    await expect(issueAuthorizationCode(db, { ...base, codeChallenge: 'short', codeChallengeMethod: 'S256' })).rejects.toThrow(
      /code_challenge/,
    );
  });

  it('device codes: user codes are forgiving to type, decided once, and only within their organization', async () => {
    const { db, org, user, client } = await fixture();
    const created = await createDeviceAuthorization(db, {
      clientPk: client.id,
      organizationId: org.id,
      requestedScope: 'devices:read',
      ttlSeconds: 600,
      intervalSeconds: 5,
    });
    expect(created.userCode).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(formatUserCode(normalizeUserCode(created.userCode.toLowerCase().replace('-', ' ')))).toBe(created.userCode);
    const pending = await findPendingDeviceCode(db, ` ${created.userCode.toLowerCase()} `);
    expect(pending).toMatchObject({
      clientId: client.client_id,
      organizationId: org.id,
      requestedScope: 'devices:read',
      clientScopes: ['devices:read'],
    });
    const decision = { userId: user.id, approve: true, scopes: ['devices:read'], scopeDisplay: 'devices:read' };
    expect(await decideDeviceCode(db, created.userCode, { ...decision, organizationId: '00000000-0000-0000-0000-000000000000' })).toBe(
      false,
    );
    expect(await decideDeviceCode(db, created.userCode, { ...decision, organizationId: org.id })).toBe(true);
    expect(await decideDeviceCode(db, created.userCode, { ...decision, organizationId: org.id })).toBe(false);
    expect(await findPendingDeviceCode(db, created.userCode)).toBeUndefined();
  });

  it('signing keys: one current key even when created concurrently; rotation retires and later purges', async () => {
    const db = database.db;
    const keys = await Promise.all([ensureCurrentKey(db), ensureCurrentKey(db), ensureCurrentKey(db)]);
    expect(new Set(keys.map((k) => k.kid)).size).toBe(1);
    const rotated = await rotateSigningKeys(db);
    expect(rotated.retired.map((r) => r.kid)).toEqual([keys[0]!.kid]);
    expect((await listPublishedKeys(db)).map((k) => k.kid).sort()).toEqual([rotated.kid, keys[0]!.kid].sort());
    await db
      .updateTable('signing_keys')
      .set({ publish_until: new Date(Date.now() - 1000) })
      .where('kid', '=', keys[0]!.kid)
      .execute();
    expect(await purgeRetiredKeys(db)).toBe(1);
    expect(await countRows(db, 'signing_keys')).toBe(1);
  });

  const issuance = (
    org: { id: string },
    clientPk: string,
    userId: string | null,
    options: { refresh?: boolean; scopes?: string[] } = {},
  ): NewIssuance => {
    const now = new Date();
    const scopes = options.scopes ?? ['devices:read'];
    return {
      grantId: randomUUID(),
      grant: { organizationId: org.id, clientPk, userId, grantType: 'password', scopes, scopeDisplay: scopes.join(' ') },
      access: {
        tokenHash: `at-${randomUUID()}`,
        scopes,
        scopeDisplay: scopes.join(' '),
        createdAt: now,
        expiresAt: new Date(now.getTime() + 3_600_000),
      },
      ...(options.refresh && { refresh: { tokenHash: `rt-${randomUUID()}`, expiresAt: null } }),
    };
  };

  it('stores a batch of issuances in one statement: grants, access tokens and only the refresh tokens asked for', async () => {
    const { db, org, user, client } = await fixture();
    const batch = [
      issuance(org, client.id, user.id, { refresh: true, scopes: ['devices:read', 'offline_access'] }),
      issuance(org, client.id, null, { scopes: [] }),
      issuance(org, client.id, user.id, { refresh: true }),
    ];
    await insertGrantsWithTokens(db, batch);
    for (const item of batch) {
      const view = await findActiveAccessToken(db, item.access.tokenHash);
      expect(view).toMatchObject({
        grantId: item.grantId,
        organizationId: org.id,
        clientPk: client.id,
        userId: item.grant.userId,
        scopes: [...item.access.scopes],
        scopeDisplay: item.access.scopeDisplay,
      });
      expect(view!.expiresAt.getTime()).toBe(item.access.expiresAt.getTime());
      if (item.refresh)
        expect(await findRefreshToken(db, item.refresh.tokenHash)).toMatchObject({
          grantId: item.grantId,
          expiresAt: null,
          grantScopes: [...item.grant.scopes],
        });
    }
    const refreshTokens = await db.selectFrom('oauth_refresh_tokens').select('token_hash').where('organization_id', '=', org.id).execute();
    expect(refreshTokens.map((r) => r.token_hash).sort()).toEqual(batch.flatMap((i) => (i.refresh ? [i.refresh.tokenHash] : [])).sort());
  });

  it('group commit: concurrent issuances share statements, and a bad one fails alone', async () => {
    const { db, org, user, client } = await fixture();
    let statements = 0;
    const commit = new GroupCommit<NewIssuance>(
      async (items) => {
        statements++;
        await insertGrantsWithTokens(db, items);
      },
      { maxBatch: 50, maxInFlight: 1 },
    );
    const good = Array.from({ length: 40 }, () => issuance(org, client.id, user.id, { refresh: true }));
    const bad = issuance(org, randomUUID(), user.id); // no such client: the foreign key refuses it
    const results = await Promise.allSettled([...good.slice(0, 20), bad, ...good.slice(20)].map((item) => commit.submit(item)));
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect(results[20]!.status).toBe('rejected');
    for (const item of good) expect(await findActiveAccessToken(db, item.access.tokenHash)).toBeDefined();
    expect(await findActiveAccessToken(db, bad.access.tokenHash)).toBeUndefined();
    // Submitted in one turn of the event loop, the 41 share one statement, which failed because
    // of the bad one and was retried one by one.
    expect(statements).toBe(1 + 41);
  });
});
