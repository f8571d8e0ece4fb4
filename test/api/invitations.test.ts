import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveMember } from '../../src/identity/accounts.js';
import { answerAsUser, findInvitationByToken } from '../../src/identity/invitations.service.js';
import type { App } from '../../src/server/context.js';
import type { User } from '../../src/storage/schema.js';
import { backends, useDatabase } from '../support/databases.js';
import { JSON_API, PUBLIC_URL, type TestOrg, apiKey, call, createOrg, makeApp } from './support.js';

/**
 * Adding a person by email is an invitation (issue 11): `POST /v1/users` answers 202 with the
 * invitation, the same whether or not the email has an account, and the organization sees nothing
 * of the account before its owner accepts. `/v1/invitations` lists, shows and revokes. The pages
 * where people answer are tested in test/oauth-pages/invitations.test.ts.
 */

describe.each(backends)('invitations API on $name', (backend) => {
  const database = useDatabase(backend);
  let app: App;
  let acme: TestOrg;
  let beta: TestOrg;
  /** An account of beta, with a password and a name of its own. */
  let betaAdmin: User;
  let n = 0;

  beforeAll(async () => {
    app = await makeApp(database.db, database.current.handle.kind);
    acme = await createOrg(database.db, 'acme');
    beta = await createOrg(database.db, 'beta');
    betaAdmin = await saveMember(database.db, beta.id, {
      email: `admin-${Date.now()}@beta.test`,
      name: 'Beta Admin',
      password: 'beta-admin-password',
      role: 'admin',
    });
  });
  afterAll(async () => {
    await app?.close();
  });

  const invite = (body: Record<string, unknown>, token = acme.adminKey, accept?: string) =>
    call(app, { method: 'POST', url: '/v1/users', token, body, ...(accept && { accept }) });
  const tokenOf = (response: { data: any }): string => new URL(response.data.meta.accept_url).searchParams.get('token')!;

  it("answers 202 with the invitation, the same shape for another organization's account as for a new email, revealing nothing of the account", async () => {
    const existing = await invite({ email: betaAdmin.email, role: 'viewer' });
    const fresh = await invite({ email: `nobody-${n++}@example.test`, role: 'viewer' });
    for (const response of [existing, fresh]) {
      expect(response.statusCode, response.body).toBe(202);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      const data = response.data.data;
      expect(response.headers.location).toBe(`${PUBLIC_URL}/v1/invitations/${data.id}`);
      expect(data.links.self).toBe(response.headers.location);
      expect(data).toMatchObject({
        role: 'viewer',
        status: 'pending',
        name: null,
        invited_by: acme.ownerId,
        user_id: null,
        accepted_at: null,
        declined_at: null,
        revoked_at: null,
      });
      expect(Date.parse(data.expires_at) - Date.parse(data.created_at)).toBe(14 * 24 * 60 * 60 * 1000);
      expect(response.data.meta.accept_url).toMatch(new RegExp(`^${PUBLIC_URL}/invitations\\?token=sc_inv_[A-Za-z0-9_-]{43}$`));
    }
    // Same status, same keys everywhere, and nothing of the account.
    const shape = (value: unknown): unknown =>
      value && typeof value === 'object'
        ? Object.fromEntries(
            Object.entries(value)
              .map(([k, v]) => [k, shape(v)])
              .sort(([a], [b]) => String(a).localeCompare(String(b))),
          )
        : typeof value;
    expect(shape(existing.data)).toEqual(shape(fresh.data));
    expect(Object.keys(existing.headers).sort()).toEqual(Object.keys(fresh.headers).sort());
    expect(existing.body).not.toContain(betaAdmin.id);
    expect(existing.body).not.toContain(betaAdmin.created_at.toISOString());
    expect(existing.body).not.toContain('Beta Admin');
    expect(existing.data.data.email).toBe(betaAdmin.email);
    expect(existing.data.meta).toEqual({ accept_url: expect.any(String) });

    // Until they accept, acme sees nothing of them.
    const users = await call(app, { url: '/v1/users?limit=1000', token: acme.adminKey });
    expect(users.body).not.toContain(betaAdmin.email);
    expect((await call(app, { url: `/v1/users/${betaAdmin.id}`, token: acme.adminKey })).statusCode).toBe(404);
    expect((await call(app, { url: `/v1/users?email=${betaAdmin.email}`, token: acme.adminKey })).data.data).toEqual([]);
    // Its membership in beta is untouched, and it has none in acme.
    const memberships = await database.db.selectFrom('memberships').select('organization_id').where('user_id', '=', betaAdmin.id).execute();
    expect(memberships.map((m) => m.organization_id)).toEqual([beta.id]);
  });

  it('stores only the hash of the token and never shows it again', async () => {
    const created = await invite({ email: `hashed-${n++}@example.test` });
    const token = tokenOf(created);
    const row = await database.db
      .selectFrom('organization_invitations')
      .selectAll()
      .where('id', '=', created.data.data.id)
      .executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain(token);
    expect(row.token_hash).toHaveLength(43);
    for (const url of [`/v1/invitations/${created.data.data.id}`, '/v1/invitations?limit=1000']) {
      const response = await call(app, { url, token: acme.adminKey });
      expect(response.statusCode).toBe(200);
      expect(response.body).not.toContain(token);
      expect(response.body).not.toContain('accept_url');
    }
  });

  it('speaks JSON:API: a users document invites, an invitations resource comes back', async () => {
    const email = `jsonapi-${n++}@example.test`;
    const response = await call(app, {
      method: 'POST',
      url: '/v1/users',
      token: acme.adminKey,
      body: { data: { type: 'users', attributes: { email, role: 'member' } } },
      contentType: JSON_API,
      accept: JSON_API,
    });
    expect(response.statusCode, response.body).toBe(202);
    expect(response.headers['content-type']).toMatch(/^application\/vnd\.api\+json/);
    expect(response.data.data).toMatchObject({
      type: 'invitations',
      attributes: { email, role: 'member', status: 'pending' },
      relationships: { invited_by: { data: { type: 'users', id: acme.ownerId } }, user: { data: null } },
      links: { self: response.headers.location },
    });
    expect(response.data.meta.accept_url).toMatch(/\/invitations\?token=sc_inv_/);
  });

  it('normalizes the email, refuses a second pending invitation and a member (409), a password (400) and an owner role from a non-owner (403)', async () => {
    const email = `Mixed.Case-${n++}@Example.test`;
    const created = await invite({ email });
    expect(created.statusCode, created.body).toBe(202);
    expect(created.data.data).toMatchObject({ email: email.toLowerCase(), role: 'member' });
    const again = await invite({ email: email.toUpperCase(), role: 'admin' });
    expect(again.statusCode).toBe(409);
    expect(again.headers['content-type']).toContain('application/problem+json');
    expect(again.data.detail).toMatch(/pending invitation/);

    const member = await invite({ email: acme.ownerEmail });
    expect(member.statusCode).toBe(409);
    expect(member.data.detail).toMatch(/already a member/);

    const withPassword = await invite({ email: `pw-${n++}@example.test`, password: 'a-long-enough-password' });
    expect(withPassword.statusCode).toBe(400);
    expect(withPassword.data.errors.map((e: any) => e.pointer)).toContain('/body/password');

    const admin = await saveMember(database.db, acme.id, { email: `admin-${n++}@example.test`, role: 'admin' });
    const adminKey = await apiKey(database.db, { id: acme.id, ownerId: admin.id }, ['users:read', 'users:write']);
    expect((await invite({ email: `owner-${n++}@example.test`, role: 'owner' }, adminKey)).statusCode).toBe(403);
    const byAdmin = await invite({ email: `by-admin-${n++}@example.test`, role: 'admin' }, adminKey);
    expect(byAdmin.statusCode).toBe(202);
    expect(byAdmin.data.data.invited_by).toBe(admin.id);
    // Reading needs users:read, inviting and revoking users:write.
    const readOnly = await apiKey(database.db, acme, ['users:read']);
    expect((await call(app, { url: '/v1/invitations', token: readOnly })).statusCode).toBe(200);
    expect((await invite({ email: `ro-${n++}@example.test` }, readOnly)).statusCode).toBe(403);
    expect((await call(app, { method: 'DELETE', url: `/v1/invitations/${byAdmin.data.data.id}`, token: readOnly })).statusCode).toBe(403);
  });

  it('lists (filtered by status and email, paginated), shows and revokes', async () => {
    const emails = [0, 1, 2].map(() => `listed-${n++}@example.test`);
    const ids: string[] = [];
    for (const email of emails) ids.push((await invite({ email })).data.data.id);
    const pending = await call(app, { url: '/v1/invitations?status=pending&limit=1000', token: acme.adminKey });
    expect(pending.data.data.map((i: any) => i.id)).toEqual(expect.arrayContaining(ids));
    // Newest first by default.
    const all = pending.data.data.map((i: any) => i.id);
    expect(all.indexOf(ids[2])).toBeLessThan(all.indexOf(ids[0]));
    const paged = await call(app, { url: '/v1/invitations?limit=1', token: acme.adminKey });
    expect(paged.data.links.next).toMatch(/cursor=/);
    expect(
      (await call(app, { url: `/v1/invitations?email=${emails[1]!.toUpperCase()}`, token: acme.adminKey })).data.data.map((i: any) => i.id),
    ).toEqual([ids[1]]);
    expect((await call(app, { url: '/v1/invitations?status=nope', token: acme.adminKey })).statusCode).toBe(400);

    const revoked = await call(app, { method: 'DELETE', url: `/v1/invitations/${ids[0]}`, token: acme.adminKey });
    expect(revoked.statusCode).toBe(204);
    const shown = await call(app, { url: `/v1/invitations/${ids[0]}`, token: acme.adminKey });
    expect(shown.data.data).toMatchObject({ status: 'revoked', revoked_at: expect.any(String) });
    // Revoking again changes nothing; the email may be invited again.
    expect((await call(app, { method: 'DELETE', url: `/v1/invitations/${ids[0]}`, token: acme.adminKey })).statusCode).toBe(204);
    expect(
      (await call(app, { url: '/v1/invitations?status=revoked&limit=1000', token: acme.adminKey })).data.data.map((i: any) => i.id),
    ).toContain(ids[0]);
    expect((await invite({ email: emails[0] })).statusCode).toBe(202);
    expect((await call(app, { url: '/v1/invitations/not-a-uuid', token: acme.adminKey })).statusCode).toBe(404);
  });

  it('an accepted invitation names the member and cannot be revoked; the token then leads nowhere new', async () => {
    const created = await invite({ email: betaAdmin.email.replace('admin-', 'second-'), role: 'member' });
    const person = await saveMember(database.db, beta.id, { email: created.data.data.email, role: 'viewer' });
    const invitation = (await findInvitationByToken(database.db, tokenOf(created)))!;
    expect(await answerAsUser(database.db, invitation, person, 'accept', '127.0.0.1')).toBe('accepted');
    const shown = await call(app, { url: `/v1/invitations/${created.data.data.id}`, token: acme.adminKey });
    expect(shown.data.data).toMatchObject({ status: 'accepted', user_id: person.id, accepted_at: expect.any(String) });
    expect((await call(app, { url: `/v1/users/${person.id}`, token: acme.adminKey })).data.data.role).toBe('member');
    const refused = await call(app, { method: 'DELETE', url: `/v1/invitations/${created.data.data.id}`, token: acme.adminKey });
    expect(refused.statusCode).toBe(409);
    expect(refused.data.detail).toMatch(/accepted/);
    // Accepting twice is refused (the invitation is no longer pending).
    expect(await answerAsUser(database.db, invitation, person, 'accept', '127.0.0.1')).toBe('gone');
  });

  it('expires: an expired invitation shows as expired, cannot be answered, and a new one supersedes it', async () => {
    const email = `expiring-${n++}@example.test`;
    const created = await invite({ email });
    await database.db
      .updateTable('organization_invitations')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('id', '=', created.data.data.id)
      .execute();
    expect((await call(app, { url: `/v1/invitations/${created.data.data.id}`, token: acme.adminKey })).data.data.status).toBe('expired');
    expect(
      (await call(app, { url: '/v1/invitations?status=expired&limit=1000', token: acme.adminKey })).data.data.map((i: any) => i.id),
    ).toContain(created.data.data.id);
    expect(
      (await call(app, { url: '/v1/invitations?status=pending&limit=1000', token: acme.adminKey })).data.data.map((i: any) => i.id),
    ).not.toContain(created.data.data.id);
    const person = await saveMember(database.db, beta.id, { email, role: 'viewer' });
    expect(
      await answerAsUser(database.db, (await findInvitationByToken(database.db, tokenOf(created)))!, person, 'accept', '127.0.0.1'),
    ).toBe('gone');
    expect((await call(app, { method: 'DELETE', url: `/v1/invitations/${created.data.data.id}`, token: acme.adminKey })).statusCode).toBe(
      409,
    );

    const renewed = await invite({ email });
    expect(renewed.statusCode, renewed.body).toBe(202);
    expect((await call(app, { url: `/v1/invitations/${created.data.data.id}`, token: acme.adminKey })).data.data.status).toBe('expired');
    expect(
      (await call(app, { url: `/v1/invitations?email=${email}`, token: acme.adminKey })).data.data.map((i: any) => i.status).sort(),
    ).toEqual(['expired', 'pending']);
  });

  it("answers 404 for another organization's invitation and never lists it", async () => {
    const theirs = await invite({ email: `theirs-${n++}@example.test` }, beta.adminKey);
    const id = theirs.data.data.id;
    for (const method of ['GET', 'DELETE'] as const) {
      const response = await call(app, { method, url: `/v1/invitations/${id}`, token: acme.adminKey });
      expect(response.statusCode, method).toBe(404);
      expect(response.data.detail).toMatch(/does not exist/);
    }
    expect((await call(app, { url: '/v1/invitations?limit=1000', token: acme.adminKey })).body).not.toContain(id);
    expect((await call(app, { url: `/v1/invitations/${id}`, token: beta.adminKey })).data.data.status).toBe('pending');
    // The same email may have a pending invitation in each organization.
    expect((await invite({ email: theirs.data.data.email })).statusCode).toBe(202);
  });

  it('/openapi.json lists the invitation routes', async () => {
    const doc = (await call(app, { url: '/openapi.json' })).data;
    expect(Object.keys(doc.paths['/v1/invitations'])).toContain('get');
    expect(Object.keys(doc.paths['/v1/invitations/{id}']).sort()).toEqual(expect.arrayContaining(['delete', 'get']));
    const post = doc.paths['/v1/users'].post;
    expect(Object.keys(post.responses)).toContain('202');
    expect(post.description).toMatch(/accept_url/);
    expect(Object.keys(post.requestBody.content['application/json'].schema.properties).sort()).toEqual(['email', 'name', 'role']);
    expect(doc.paths['/v1/invitations'].get.parameters.map((p: any) => p.name)).toEqual(
      expect.arrayContaining(['status', 'email', 'cursor', 'limit']),
    );
  });
});
