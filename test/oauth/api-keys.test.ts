import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProvisioning } from '../../src/provisioning/load.js';
import { applyProvisioning } from '../../src/provisioning/provision.js';
import { sha256 } from '../../src/security/tokens.js';
import { backends, dumpDatabase } from '../support/databases.js';
import { type OAuthTestServer, passwordToken, provisioningYaml, startOAuthServer } from './support/oauth-server.js';
import { provisioningSections } from '../../src/modules.js';

/** /v1/api-keys and the `sk_live_` bearer credential (Bluesonde), plus provisioning of clients and keys. */

describe.each(backends)('API keys on $name', (backend) => {
  let server: OAuthTestServer;
  let admin: string;
  beforeAll(async () => {
    server = await startOAuthServer({ backend: backend.name });
    admin = (await passwordToken(server)).access_token;
  });
  afterAll(async () => server?.stop());

  const call = (path: string, init: { method?: string; token?: string; body?: unknown; accept?: string } = {}) =>
    server.fetch(path, {
      method: init.method ?? 'GET',
      headers: {
        authorization: `Bearer ${init.token ?? admin}`,
        ...(init.body !== undefined && { 'content-type': 'application/json' }),
        ...(init.accept && { accept: init.accept }),
      },
      ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
    });

  it('creates a key shown exactly once, lists it without the secret, and the key authenticates', async () => {
    const created = await call('/v1/api-keys', { method: 'POST', body: { name: 'reporting', scopes: ['devices:read', 'readings:read'] } });
    expect(created.status).toBe(201);
    expect(created.headers.get('cache-control')).toBe('no-store');
    const { data } = (await created.json()) as { data: Record<string, any> };
    expect(data.key).toMatch(/^sk_live_[A-Za-z0-9_-]{43}$/);
    expect(data.prefix).toBe(data.key.slice(0, 12));
    expect(created.headers.get('location')).toBe(`${server.url}/v1/api-keys/${data.id}`);
    expect(data.created_by.email).toBe('admin@acme.test');

    const stored = await server.running.database.db.selectFrom('api_keys').selectAll().where('id', '=', data.id).executeTakeFirstOrThrow();
    expect(stored.key_hash).toBe(sha256(data.key));
    expect(JSON.stringify(stored)).not.toContain(data.key);

    const list = (await (await call('/v1/api-keys')).json()) as { data: Record<string, any>[]; links: { self: string }; meta: unknown };
    const listed = list.data.find((k) => k.id === data.id) as Record<string, any>;
    expect(listed).toMatchObject({
      name: 'reporting',
      prefix: data.prefix,
      scopes: ['devices:read', 'readings:read'],
      last_used_at: null,
      expires_at: null,
    });
    expect(listed.key).toBeUndefined();
    expect(JSON.stringify(list)).not.toContain(data.key);
    expect(list.links.self).toBe(`${server.url}/v1/api-keys`);

    const use = await server.fetch('/oauth/token/info', { headers: { authorization: `Bearer ${data.key}` } });
    expect(use.status).toBe(200);
    // The last use is written in the background (at most once a minute per key), not before the answer.
    const shown = async () => ((await (await call(`/v1/api-keys/${data.id}`)).json()) as { data: Record<string, any> }).data;
    await expect.poll(async () => (await shown()).last_used_at, { timeout: 5_000 }).toEqual(expect.any(String));
    expect((await shown()).key).toBeUndefined();
  });

  it('refuses scopes beyond the creator role or the credential used, and unknown scopes', async () => {
    const narrow = await passwordToken(
      server,
      'acme-password',
      'acme-password-secret',
      'admin@acme.test',
      'Adm1n-pass-acme',
      'api_keys:write',
    );
    const beyondToken = await call('/v1/api-keys', {
      method: 'POST',
      token: narrow.access_token,
      body: { name: 'wide', scopes: ['devices:write'] },
    });
    expect(beyondToken.status).toBe(403);
    expect(beyondToken.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const unknown = await call('/v1/api-keys', { method: 'POST', body: { name: 'x', scopes: ['telepathy'] } });
    expect(unknown.status).toBe(400);
    const alias = await call('/v1/api-keys', { method: 'POST', body: { name: 'x', scopes: ['*'] } });
    expect(alias.status).toBe(400);
    // A viewer does not hold api_keys:write at all.
    const viewer = await passwordToken(server, 'acme-password', 'acme-password-secret', 'viewer@acme.test', 'V1ewer-pass-acme');
    expect(
      (await call('/v1/api-keys', { method: 'POST', token: viewer.access_token, body: { name: 'v', scopes: ['devices:read'] } })).status,
    ).toBe(403);
  });

  it('names are unique among active keys; expiry is honoured; JSON:API when asked', async () => {
    expect((await call('/v1/api-keys', { method: 'POST', body: { name: 'dup', scopes: ['devices:read'] } })).status).toBe(201);
    const dup = await call('/v1/api-keys', { method: 'POST', body: { name: 'dup', scopes: ['devices:read'] } });
    expect(dup.status).toBe(409);
    const past = await call('/v1/api-keys', {
      method: 'POST',
      body: { name: 'old', scopes: ['devices:read'], expires_at: '2020-01-01T00:00:00Z' },
    });
    expect(past.status).toBe(400);
    const soon = await call('/v1/api-keys', {
      method: 'POST',
      body: { name: 'soon', scopes: ['devices:read'], expires_at: new Date(Date.now() + 86_400_000).toISOString() },
    });
    const key = ((await soon.json()) as { data: { key: string; id: string } }).data;
    await server.running.database.db
      .updateTable('api_keys')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('id', '=', key.id)
      .execute();
    expect((await server.fetch('/oauth/token/info', { headers: { authorization: `Bearer ${key.key}` } })).status).toBe(401);
    const jsonApi = await call(`/v1/api-keys/${key.id}`, { accept: 'application/vnd.api+json' });
    expect(jsonApi.headers.get('content-type')).toMatch(/^application\/vnd\.api\+json/);
    expect(((await jsonApi.json()) as { data: { type: string } }).data.type).toBe('api-keys');
  });

  it('revocation takes effect at once; a foreign or unknown id is 404', async () => {
    const created = (await (
      await call('/v1/api-keys', { method: 'POST', body: { name: 'to-revoke', scopes: ['devices:read'] } })
    ).json()) as { data: { key: string; id: string } };
    const use = () => server.fetch('/oauth/token/info', { headers: { authorization: `Bearer ${created.data.key}` } });
    expect((await use()).status).toBe(200);
    expect((await call(`/v1/api-keys/${created.data.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await use()).status).toBe(401);
    expect((await call('/v1/api-keys/00000000-0000-0000-0000-000000000000', { method: 'DELETE' })).status).toBe(404);
    expect((await call('/v1/api-keys/not-a-uuid')).status).toBe(404);
    // The revoked key's name can be reused.
    expect((await call('/v1/api-keys', { method: 'POST', body: { name: 'to-revoke', scopes: ['devices:read'] } })).status).toBe(201);
  });

  it("another organization's admin neither sees nor revokes this organization's keys (404, never 403)", async () => {
    const db = server.running.database.db;
    const acmeKey = await db.selectFrom('api_keys').select('id').where('name', '=', 'ci').executeTakeFirstOrThrow();
    const globex = (await passwordToken(server, 'globex-password', 'globex-password-secret', 'admin@globex.test', 'Adm1n-pass-globex'))
      .access_token;
    const list = (await (await call('/v1/api-keys', { token: globex })).json()) as { data: unknown[] };
    expect(list.data).toEqual([]);
    expect((await call(`/v1/api-keys/${acmeKey.id}`, { token: globex })).status).toBe(404);
    expect((await call(`/v1/api-keys/${acmeKey.id}`, { token: globex, method: 'DELETE' })).status).toBe(404);
    expect(
      (await server.fetch('/oauth/token/info', { headers: { authorization: 'Bearer sk_live_acmeci0000000000000000000000' } })).status,
    ).toBe(200);
  });

  it('re-applying the provisioning file changes nothing (no rehashing of client secrets or keys)', async () => {
    const db = server.running.database.db;
    const file = parseProvisioning(provisioningYaml(), 'again.yaml');
    const before = await dumpDatabase(db);
    await applyProvisioning(db, file, provisioningSections());
    const after = await dumpDatabase(db);
    expect(after.oauth_clients).toEqual(before.oauth_clients);
    expect(after.api_keys).toEqual(before.api_keys);
    const web = await db.selectFrom('oauth_clients').selectAll().where('client_id', '=', 'acme-web').executeTakeFirstOrThrow();
    expect(web.secret_hash).toMatch(/^\$argon2id\$/);
    expect(web).toMatchObject({
      name: 'Acme Dashboard',
      privacy_policy_url: 'https://acme.test/privacy',
      access_token_ttl: 3600,
      token_format: 'opaque',
      public: false,
    });
    const m2m = await db.selectFrom('oauth_clients').selectAll().where('client_id', '=', 'acme-m2m').executeTakeFirstOrThrow();
    const viewer = await db.selectFrom('users').select('id').where('email', '=', 'viewer@acme.test').executeTakeFirstOrThrow();
    expect(m2m.bound_user_id).toBe(viewer.id);
    const spa = await db.selectFrom('oauth_clients').selectAll().where('client_id', '=', 'acme-spa').executeTakeFirstOrThrow();
    expect(spa).toMatchObject({ public: true, secret_hash: null });

    // A changed secret is rehashed and the old one stops working at once, though this node had it
    // in its verified-secret cache.
    const cached = await server.fetch('/oauth/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'acme-m2m', client_secret: 'acme-m2m-secret' }),
    });
    expect(cached.status).toBe(200);
    const changed = parseProvisioning(
      provisioningYaml().replace('client_secret: "acme-m2m-secret"', 'client_secret: "acme-m2m-rotated"'),
      'changed.yaml',
    );
    await applyProvisioning(db, changed, provisioningSections());
    const res = await server.fetch('/oauth/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'acme-m2m', client_secret: 'acme-m2m-secret' }),
    });
    expect(res.status).toBe(401);
    const ok = await server.fetch('/oauth/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'acme-m2m', client_secret: 'acme-m2m-rotated' }),
    });
    expect(ok.status).toBe(200);
  });
});
