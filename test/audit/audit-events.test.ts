import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_ACTIONS } from '../../src/audit/actions.js';
import { auditRetentionJob } from '../../src/audit/retention.js';
import { ConfigError, readEnvironment } from '../../src/config/env.js';
import { answerAsUser, findInvitationByToken } from '../../src/identity/invitations.service.js';
import { JobRunner } from '../../src/jobs/runner.js';
import { backends } from '../support/databases.js';
import { Browser } from '../support/browser.js';
import { specExampleYaml } from '../support/files.js';
import { type OAuthTestServer, basic, passwordToken, postForm, startOAuthServer } from '../oauth/support/oauth-server.js';
import { WEB, authorizeUrl } from '../oauth-pages/support.js';

/**
 * The audit log (issue 15): every creation, rotation and revocation of a credential, secret or
 * consent, role changes and failed sign-ins are recorded in the transaction of the change, with
 * actor, source address and target and never the secret; `/v1/audit-events` shows them to owners
 * and admins only, filtered and paged; entries older than AUDIT_RETENTION_DAYS are purged.
 */

const PROVISIONING = specExampleYaml({
  acme: {
    users: [
      { email: 'member@acme.test', password: 'Memb3r-pass-acme', role: 'member' },
      { email: 'staff@acme.test', password: 'St4ff-pass-acme', role: 'member' },
      { email: 'both@acme.test', password: 'B0th-pass-shared', role: 'viewer' },
    ],
  },
  organizations: [
    {
      slug: 'globex',
      name: 'Globex',
      users: [
        { email: 'admin@globex.test', password: 'Adm1n-pass-globex', role: 'admin' },
        { email: 'both@acme.test', password: 'B0th-pass-shared', role: 'viewer' },
      ],
      clients: [{ client_id: 'globex-password', client_secret: 'globex-password-secret', grant_types: ['password'], scopes: ['*'] }],
    },
  ],
});

const PASSWORDS: Record<string, string> = {
  'admin@acme.test': 'Adm1n-pass-acme',
  'viewer@acme.test': 'V1ewer-pass-acme',
  'member@acme.test': 'Memb3r-pass-acme',
  'both@acme.test': 'B0th-pass-shared',
};

describe.each(backends)('the audit log on $name', (backend) => {
  let server: OAuthTestServer;
  let admin: string;
  let globexAdmin: string;
  let acme: string;
  let globex: string;
  const userIds: Record<string, string> = {};

  beforeAll(async () => {
    server = await startOAuthServer({ backend: backend.name, provisioning: PROVISIONING });
    admin = (await passwordToken(server)).access_token;
    globexAdmin = (await passwordToken(server, 'globex-password', 'globex-password-secret', 'admin@globex.test', 'Adm1n-pass-globex'))
      .access_token;
    const orgs = await server.db.selectFrom('organizations').select(['id', 'slug']).execute();
    acme = orgs.find((o) => o.slug === 'acme')!.id;
    globex = orgs.find((o) => o.slug === 'globex')!.id;
    for (const user of await server.db.selectFrom('users').select(['id', 'email']).execute()) userIds[user.email] = user.id;
  });
  afterAll(async () => server?.stop());

  const call = (path: string, init: { method?: string; token?: string; body?: unknown; accept?: string } = {}) =>
    server.fetch(path, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: {
        authorization: `Bearer ${init.token ?? admin}`,
        ...(init.body !== undefined && { 'content-type': 'application/json' }),
        ...(init.accept && { accept: init.accept }),
      },
      ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
    });
  const json = async (path: string, init: Parameters<typeof call>[1] = {}) => {
    const response = await call(path, init);
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined, text };
  };

  /** The audit rows about one target, oldest first. */
  const auditOf = (targetId: string) =>
    server.db.selectFrom('audit_events').selectAll().where('target_id', '=', targetId).orderBy('at').orderBy('id').execute();

  /** Each action once, made by `actor` from the test's address, and none of `secrets` anywhere in the rows. */
  async function expectAudited(
    targetId: string,
    actions: string[],
    secrets: string[],
    actor: { kind: string; id: string | null } = { kind: 'user', id: userIds['admin@acme.test']! },
    organizationId = acme,
  ) {
    const rows = await auditOf(targetId);
    expect(rows.map((r) => r.action).sort()).toEqual([...actions].sort());
    for (const row of rows) {
      expect(row).toMatchObject({
        organization_id: organizationId,
        actor_kind: actor.kind,
        actor_id: actor.id,
        source_address: actor.kind === 'system' ? null : '127.0.0.1',
        target_id: targetId,
      });
    }
    const stored = JSON.stringify(rows);
    for (const secret of secrets) expect(stored).not.toContain(secret);
    return rows;
  }

  describe('what is recorded', () => {
    it('API keys: created, rotated (only by their creator), revoked; never the key', async () => {
      const created = await json('/v1/api-keys', { body: { name: 'audited', scopes: ['devices:read'] } });
      expect(created.status).toBe(201);
      const { id, key } = created.body.data;
      const rotated = await json(`/v1/api-keys/${id}/rotate`, { method: 'POST' });
      expect(rotated.status).toBe(200);
      const newKey = rotated.body.data.key as string;
      expect(newKey).toMatch(/^sk_live_/);
      expect(newKey).not.toBe(key);
      expect(rotated.body.data.id).toBe(id);
      expect((await call('/v1/devices', { token: key })).status).toBe(401);
      expect((await call('/v1/devices', { token: newKey })).status).toBe(200);
      expect((await call(`/v1/api-keys/${id}`, { method: 'DELETE' })).status).toBe(204);
      expect((await call(`/v1/api-keys/${id}`, { method: 'DELETE' })).status).toBe(204);
      expect((await call('/v1/devices', { token: newKey })).status).toBe(401);
      expect((await call(`/v1/api-keys/${id}/rotate`, { method: 'POST' })).status).toBe(409);

      const rows = await expectAudited(id, ['api_key.created', 'api_key.rotated', 'api_key.revoked'], [key, newKey]);
      expect(rows.every((r) => r.target_type === 'api_key')).toBe(true);
      expect(rows.find((r) => r.action === 'api_key.created')?.details).toEqual({
        name: 'audited',
        scopes: ['devices:read'],
        expires_at: null,
      });
    });

    it('API keys: someone else’s key cannot be rotated (it acts as its creator)', async () => {
      const provisioned = await server.db.selectFrom('api_keys').select('id').where('name', '=', 'ci').executeTakeFirstOrThrow();
      const member = await server.db.selectFrom('users').select('id').where('email', '=', 'member@acme.test').executeTakeFirstOrThrow();
      await server.db.updateTable('api_keys').set({ created_by: member.id }).where('id', '=', provisioned.id).execute();
      const refused = await call(`/v1/api-keys/${provisioned.id}/rotate`, { method: 'POST' });
      expect(refused.status).toBe(403);
      expect((await auditOf(provisioned.id)).map((r) => r.action)).toEqual(['api_key.created']);
    });

    it('API keys made with an API key record the key as the actor', async () => {
      const parent = (await json('/v1/api-keys', { body: { name: 'parent', scopes: ['api_keys:write', 'devices:read'] } })).body.data;
      const child = await json('/v1/api-keys', { token: parent.key, body: { name: 'child', scopes: ['devices:read'] } });
      expect(child.status).toBe(201);
      await expectAudited(child.body.data.id, ['api_key.created'], [parent.key, child.body.data.key], { kind: 'api_key', id: parent.id });
    });

    it('device tokens: issued with the device, rotated, revoked with its deletion', async () => {
      const created = await json('/v1/devices', { body: { serial: 'AUDIT-1', name: 'Audited fridge' } });
      expect(created.status).toBe(201);
      const { id, token } = created.body.data;
      const rotated = await json(`/v1/devices/${id}/token`, { method: 'POST' });
      expect(rotated.status).toBe(200);
      expect((await call(`/v1/devices/${id}`, { method: 'DELETE' })).status).toBe(204);
      const rows = await expectAudited(
        id,
        ['device_token.created', 'device_token.rotated', 'device_token.revoked'],
        [token, rotated.body.data.token],
      );
      expect(rows.every((r) => r.target_type === 'device' && r.details.serial === 'AUDIT-1')).toBe(true);
      expect(rows.find((r) => r.action === 'device_token.revoked')?.details).toEqual({ serial: 'AUDIT-1', reason: 'device_deleted' });
    });

    it('webhooks: created with a secret, the secret rotated, updated, deleted; never a secret nor the full URL', async () => {
      const url = 'https://93.184.215.14/hooks/T0KEN-in-the-path?key=also-secret';
      const created = await json('/v1/webhooks', { body: { url, event_types: ['alarm.triggered'] } });
      expect(created.status).toBe(201);
      const { id, secret } = created.body.data;
      const rotated = await json(`/v1/webhooks/${id}/rotate-secret`, { method: 'POST' });
      expect(rotated.status).toBe(200);
      expect((await call(`/v1/webhooks/${id}`, { method: 'PATCH', body: { enabled: false } })).status).toBe(200);
      expect((await call(`/v1/webhooks/${id}`, { method: 'DELETE' })).status).toBe(204);
      const rows = await expectAudited(
        id,
        ['webhook.created', 'webhook.secret_rotated', 'webhook.updated', 'webhook.deleted'],
        [secret, rotated.body.data.secret, 'T0KEN-in-the-path', 'also-secret'],
      );
      expect(rows.every((r) => r.details.destination === 'https://93.184.215.14')).toBe(true);
      expect(rows.find((r) => r.action === 'webhook.updated')?.details).toMatchObject({ changed: ['enabled'], enabled: false });
      const sealed = await server.db.selectFrom('audit_events').select('details').where('target_id', '=', id).execute();
      expect(JSON.stringify(sealed)).not.toMatch(/whsec_/);
    });

    it('consents: granted on the consent page, revoked on "Authorized applications" and through the API', async () => {
      const client = await server.db
        .selectFrom('oauth_clients')
        .select('id')
        .where('client_id', '=', WEB.clientId)
        .executeTakeFirstOrThrow();
      const browser = new Browser(server.url, PASSWORDS);
      const scope = 'devices:read readings:read';
      const authorize = (state: string) =>
        authorizeUrl({ response_type: 'code', client_id: WEB.clientId, redirect_uri: WEB.redirectUri, scope, state });
      const redirect = await browser.authorize(`${server.url}${authorize('one')}`, 'viewer@acme.test', PASSWORDS['viewer@acme.test']!);
      expect(redirect.searchParams.get('code')).toBeTruthy();
      const viewer = { kind: 'user', id: userIds['viewer@acme.test']! };
      const granted = await expectAudited(client.id, ['consent.granted'], [PASSWORDS['viewer@acme.test']!], viewer);
      expect(granted[0]).toMatchObject({
        target_type: 'application',
        details: {
          client_id: WEB.clientId,
          user_id: viewer.id,
          scopes: ['devices:read', 'readings:read'],
          via: 'authorization_code',
        },
      });
      expect(JSON.stringify(granted)).not.toContain(redirect.searchParams.get('code')!);

      // Revoked on the page (a signed-in person, their address).
      const page = await browser.page('/account/authorized-applications');
      const form = page.forms.find((f) => f.action === '/account/authorized-applications/revoke')!;
      expect((await browser.submit(form)).status).toBe(303);
      await expectAudited(client.id, ['consent.granted', 'consent.revoked'], [], viewer);

      // Granted again, revoked through /v1/authorized-applications with the person's token.
      await browser.authorize(`${server.url}${authorize('two')}`, 'viewer@acme.test', PASSWORDS['viewer@acme.test']!);
      const token = (
        await passwordToken(server, 'acme-password', 'acme-password-secret', 'viewer@acme.test', PASSWORDS['viewer@acme.test'])
      ).access_token;
      expect((await call(`/v1/authorized-applications/${WEB.clientId}`, { method: 'DELETE', token })).status).toBe(204);
      const rows = await expectAudited(
        client.id,
        ['consent.granted', 'consent.revoked', 'consent.granted', 'consent.revoked'],
        [token],
        viewer,
      );
      expect(rows.at(-1)?.details).toMatchObject({ client_id: WEB.clientId, user_id: viewer.id });
    });

    it('people: role changed, deactivated, reactivated, removed; invitations made, revoked and accepted', async () => {
      const member = userIds['staff@acme.test']!;
      expect((await call(`/v1/users/${member}`, { method: 'PATCH', body: { role: 'viewer' } })).status).toBe(200);
      // The same role again, or a name, changes nothing the log records.
      expect((await call(`/v1/users/${member}`, { method: 'PATCH', body: { role: 'viewer', name: 'Staff' } })).status).toBe(200);
      expect((await call(`/v1/users/${member}/deactivate`, { method: 'POST' })).status).toBe(200);
      expect((await call(`/v1/users/${member}/deactivate`, { method: 'POST' })).status).toBe(200);
      expect((await call(`/v1/users/${member}`, { method: 'PATCH', body: { active: true } })).status).toBe(200);
      expect((await call(`/v1/users/${member}`, { method: 'DELETE' })).status).toBe(204);
      const rows = await expectAudited(
        member,
        ['member.role_changed', 'member.deactivated', 'member.reactivated', 'member.removed'],
        ['St4ff-pass-acme'],
      );
      expect(rows.every((r) => r.target_type === 'user' && r.details.email === 'staff@acme.test')).toBe(true);
      expect(rows.find((r) => r.action === 'member.role_changed')?.details).toMatchObject({ from: 'member', to: 'viewer' });
      expect(rows.find((r) => r.action === 'member.removed')?.details).toMatchObject({ role: 'viewer' });

      // Invited, then the invitation withdrawn; another invited and accepted by its person.
      const invited = await json('/v1/users', { body: { email: 'staff@acme.test', role: 'member' } });
      expect(invited.status).toBe(202);
      const acceptUrl = invited.body.meta.accept_url as string;
      const withdrawn = invited.body.data.id as string;
      expect((await call(`/v1/invitations/${withdrawn}`, { method: 'DELETE' })).status).toBe(204);
      const token = new URL(acceptUrl).searchParams.get('token')!;
      await expectAudited(withdrawn, ['invitation.created', 'invitation.revoked'], [token]);

      const again = await json('/v1/users', { body: { email: 'staff@acme.test', role: 'member' } });
      const againToken = new URL(again.body.meta.accept_url as string).searchParams.get('token')!;
      const invitation = (await findInvitationByToken(server.db, againToken))!;
      const staff = await server.db.selectFrom('users').selectAll().where('id', '=', member).executeTakeFirstOrThrow();
      expect(await answerAsUser(server.db, invitation, staff, 'accept', '127.0.0.1')).toBe('accepted');
      const accepted = (await auditOf(invitation.id)).find((r) => r.action === 'invitation.accepted');
      expect(accepted).toMatchObject({ actor_kind: 'user', actor_id: member, source_address: '127.0.0.1', organization_id: acme });
      expect(JSON.stringify(await auditOf(invitation.id))).not.toContain(againToken);
    });

    it('failed sign-ins: one entry per organization of a known account (login form), none for unknown emails', async () => {
      const both = userIds['both@acme.test']!;
      const count = async () =>
        Number(
          (
            await server.db
              .selectFrom('audit_events')
              .select((eb) => eb.fn.countAll().as('n'))
              .executeTakeFirstOrThrow()
          ).n,
        );
      const browser = new Browser(server.url);
      const wrong = 'Wr0ng-guess-of-both';
      expect((await browser.login('/login', 'both@acme.test', wrong)).status).toBe(400);
      const rows = await auditOf(both);
      expect(rows.map((r) => [r.organization_id, r.action]).sort()).toEqual(
        [
          [acme, 'sign_in.failed'],
          [globex, 'sign_in.failed'],
        ].sort(),
      );
      for (const row of rows)
        expect(row).toMatchObject({
          actor_kind: 'user',
          actor_id: both,
          target_type: 'user',
          source_address: '127.0.0.1',
          details: { method: 'login_form' },
        });
      expect(JSON.stringify(rows)).not.toContain(wrong);

      const before = await count();
      expect((await new Browser(server.url).login('/login', 'nobody@acme.test', wrong)).status).toBe(400);
      expect(await count()).toBe(before);
      // A successful sign-in records nothing.
      expect((await new Browser(server.url).login('/login', 'both@acme.test', PASSWORDS['both@acme.test'])).status).toBe(303);
      expect(await count()).toBe(before);
    });

    it('failed sign-ins: the password grant records one entry in the client’s organization', async () => {
      const member = userIds['member@acme.test']!;
      const wrong = 'Wr0ng-guess-of-member';
      const refused = await postForm(
        server,
        '/oauth/token',
        { grant_type: 'password', username: 'member@acme.test', password: wrong },
        { authorization: basic('acme-password', 'acme-password-secret') },
      );
      expect(refused.status).toBe(400);
      const rows = await auditOf(member);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        organization_id: acme,
        action: 'sign_in.failed',
        actor_kind: 'user',
        actor_id: member,
        source_address: '127.0.0.1',
        details: { method: 'password_grant' },
      });
      expect(JSON.stringify(rows)).not.toContain(wrong);
      // Someone of another organization, tried at acme's client: not acme's to know.
      await postForm(
        server,
        '/oauth/token',
        { grant_type: 'password', username: 'admin@globex.test', password: wrong },
        { authorization: basic('acme-password', 'acme-password-secret') },
      );
      expect(await auditOf(userIds['admin@globex.test']!)).toEqual([]);
    });

    it('provisioning: the keys and device tokens the file brings are recorded once, as the server’s own doing', async () => {
      const key = await server.db.selectFrom('api_keys').select('id').where('name', '=', 'ci').executeTakeFirstOrThrow();
      const device = await server.db.selectFrom('devices').select('id').where('serial', '=', 'ACME-0001').executeTakeFirstOrThrow();
      const system = { kind: 'system', id: null };
      const secrets = ['sk_live_acmeci0000000000000000000000', 'sc_dev_acme0001000000000000000000000'];
      const [created] = await expectAudited(key.id, ['api_key.created'], secrets, system);
      expect(created?.details).toMatchObject({ name: 'ci', via: 'provisioning' });
      await expectAudited(device.id, ['device_token.created'], secrets, system);
    });

    it('every action recorded is one of the documented list, and no row holds a credential', async () => {
      const rows = await server.db.selectFrom('audit_events').selectAll().execute();
      expect(rows.length).toBeGreaterThan(10);
      for (const row of rows) expect(AUDIT_ACTIONS).toContain(row.action);
      // Stored to the millisecond, the precision of a page cursor.
      const { rows: finer } = await sql<{ n: number }>`
        select count(*)::int as n from audit_events where at <> date_trunc('milliseconds', at)`.execute(server.db);
      expect(finer[0]?.n).toBe(0);
      expect(JSON.stringify(rows)).not.toMatch(
        /sk_live_|sc_dev_|whsec_|sc_inv_|sc_at_|sc_rt_|Adm1n-pass|V1ewer-pass|Memb3r-pass|B0th-pass/,
      );
    });
  });

  describe('GET /v1/audit-events', () => {
    it('is for owners and admins: a viewer and a member are refused (403)', async () => {
      const viewer = (await passwordToken(server, 'acme-password', 'acme-password-secret', 'viewer@acme.test', 'V1ewer-pass-acme'))
        .access_token;
      const member = (await passwordToken(server, 'acme-password', 'acme-password-secret', 'member@acme.test', 'Memb3r-pass-acme'))
        .access_token;
      for (const token of [viewer, member]) {
        const res = await call('/v1/audit-events', { token });
        expect(res.status).toBe(403);
        const any = await server.db.selectFrom('audit_events').select('id').where('organization_id', '=', acme).executeTakeFirstOrThrow();
        expect((await call(`/v1/audit-events/${any.id}`, { token })).status).toBe(403);
      }
      expect((await call('/v1/audit-events')).status).toBe(200);
      expect((await call('/v1/audit-events', { token: 'nothing' })).status).toBe(401);
    });

    it('lists newest first in JSON and JSON:API, and shows one entry', async () => {
      const list = await json('/v1/audit-events?limit=1000');
      expect(list.status).toBe(200);
      const items = list.body.data as Record<string, any>[];
      const stored = await server.db.selectFrom('audit_events').select('id').where('organization_id', '=', acme).execute();
      expect(items).toHaveLength(stored.length);
      const times = items.map((i) => Date.parse(i.at));
      expect([...times].sort((a, b) => b - a)).toEqual(times);
      const first = items[0]!;
      expect(Object.keys(first).sort()).toEqual(
        ['id', 'at', 'action', 'actor_kind', 'actor_id', 'source_address', 'target_type', 'target_id', 'details', 'links'].sort(),
      );
      expect(first.links.self).toBe(`${server.url}/v1/audit-events/${first.id}`);

      const one = await json(`/v1/audit-events/${first.id}`);
      expect(one.body.data).toEqual(first);
      const jsonApi = await json(`/v1/audit-events/${first.id}`, { accept: 'application/vnd.api+json' });
      expect(jsonApi.body.data).toMatchObject({ type: 'audit-events', id: first.id, attributes: { action: first.action, at: first.at } });
      const jsonApiList = await json('/v1/audit-events?limit=2', { accept: 'application/vnd.api+json' });
      expect(jsonApiList.body.data).toHaveLength(2);
      expect(jsonApiList.body.links.next).toContain('/v1/audit-events?');
    });

    it('filters by action (exact or prefix), actor, target and time', async () => {
      const all = (await json('/v1/audit-events?limit=1000')).body.data as Record<string, any>[];
      const ids = async (query: string) =>
        ((await json(`/v1/audit-events?limit=1000&${query}`)).body.data as { id: string }[]).map((i) => i.id);
      const expected = (keep: (row: Record<string, any>) => boolean) => all.filter(keep).map((i) => i.id);

      expect(await ids('action=api_key.created')).toEqual(expected((r) => r.action === 'api_key.created'));
      const keys = expected((r) => r.action.startsWith('api_key.'));
      expect(keys.length).toBeGreaterThanOrEqual(4);
      expect(await ids('action=api_key.')).toEqual(keys);
      expect(await ids('action=api_key.*')).toEqual(keys);
      expect(await ids('action=api_key')).toEqual([]);
      expect(await ids('actor_kind=api_key')).toEqual(expected((r) => r.actor_kind === 'api_key'));
      const viewer = userIds['viewer@acme.test']!;
      expect(await ids(`actor_id=${viewer}`)).toEqual(expected((r) => r.actor_id === viewer));
      expect(await ids('target_type=application')).toEqual(expected((r) => r.target_type === 'application'));
      const target = all.find((r) => r.target_type === 'device')!.target_id;
      expect(await ids(`target_id=${target}`)).toEqual(expected((r) => r.target_id === target));
      expect(await ids(`target_id=not-a-uuid`)).toEqual([]);
      expect(await ids('action=consent.&actor_kind=user')).toEqual(
        expected((r) => r.action.startsWith('consent.') && r.actor_kind === 'user'),
      );

      const middle = all[Math.floor(all.length / 2)]!.at as string;
      expect(await ids(`from=${encodeURIComponent(middle)}`)).toEqual(expected((r) => r.at >= middle));
      expect(await ids(`to=${encodeURIComponent(middle)}`)).toEqual(expected((r) => r.at < middle));
      expect(await ids('from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z')).toEqual([]);

      for (const bad of ['from=yesterday', 'action=DROP%20TABLE', 'actor_kind=robot', 'sort=action', 'cursor=nonsense', 'other=1'])
        expect((await call(`/v1/audit-events?${bad}`)).status, bad).toBe(400);
    });

    it('pages with links.next, newest first, without repeating or skipping', async () => {
      const all = ((await json('/v1/audit-events?limit=1000')).body.data as { id: string }[]).map((i) => i.id);
      const seen: string[] = [];
      let next: string | undefined = '/v1/audit-events?limit=3';
      let pages = 0;
      while (next) {
        const page = await json(next);
        expect(page.status).toBe(200);
        seen.push(...(page.body.data as { id: string }[]).map((i) => i.id));
        next = page.body.links.next ? (page.body.links.next as string).slice(server.url.length) : undefined;
        pages++;
      }
      expect(seen).toEqual(all);
      expect(pages).toBe(Math.ceil(all.length / 3));
      const oldestFirst = ((await json('/v1/audit-events?limit=1000&sort=at')).body.data as { id: string }[]).map((i) => i.id);
      expect(oldestFirst).toEqual([...all].reverse());
    });

    it('tenancy: another organization sees none of these entries, and their ids are 404 to it', async () => {
      const acmeRows = await server.db.selectFrom('audit_events').select('id').where('organization_id', '=', acme).execute();
      const theirs = await json('/v1/audit-events?limit=1000', { token: globexAdmin });
      expect(theirs.status).toBe(200);
      const listed = (theirs.body.data as { id: string }[]).map((i) => i.id);
      const globexRows = await server.db.selectFrom('audit_events').select('id').where('organization_id', '=', globex).execute();
      expect(listed.sort()).toEqual(globexRows.map((r) => r.id).sort());
      for (const row of acmeRows.slice(0, 5)) expect((await call(`/v1/audit-events/${row.id}`, { token: globexAdmin })).status).toBe(404);
      expect(theirs.text).not.toContain(acme);
      expect((await call(`/v1/audit-events?target_id=${userIds['admin@acme.test']}`, { token: globexAdmin })).status).toBe(200);
      expect((await call('/v1/audit-events/not-a-uuid')).status).toBe(404);
    });
  });

  describe('retention', () => {
    it('AUDIT_RETENTION_DAYS: 365 days by default, 1 to 3650', () => {
      expect(readEnvironment({}).AUDIT_RETENTION_DAYS).toBe(365);
      expect(readEnvironment({ AUDIT_RETENTION_DAYS: '30' }).AUDIT_RETENTION_DAYS).toBe(30);
      for (const bad of ['0', '3651', 'forever']) expect(() => readEnvironment({ AUDIT_RETENTION_DAYS: bad })).toThrow(ConfigError);
    });

    it('one job run removes the entries older than the period and keeps the newer ones', async () => {
      const day = 86_400_000;
      const entry = (daysAgo: number, organizationId: string) => ({
        organization_id: organizationId,
        at: new Date(Date.now() - daysAgo * day),
        actor_kind: 'system',
        actor_id: null,
        source_address: null,
        action: 'webhook.disabled',
        target_type: 'webhook',
        target_id: '00000000-0000-4000-8000-000000000001',
        details: JSON.stringify({ days_ago: daysAgo }),
      });
      await server.db
        .insertInto('audit_events')
        .values([entry(400, acme), entry(31, acme), entry(29, acme), entry(31, globex), entry(1, globex)])
        .execute();
      const runner = new JobRunner(server.db, backend.name === 'postgres', { info() {}, warn() {} });
      runner.add(auditRetentionJob(server.db, 30, { info() {} }));
      const before = await server.db.selectFrom('audit_events').select(['id', 'at']).execute();
      expect(await runner.runOnce('audit-retention')).toBe(true);
      const after = await server.db.selectFrom('audit_events').select(['id', 'at', 'details']).execute();
      const cutoff = Date.now() - 30 * day;
      expect(after.every((r) => r.at.getTime() > cutoff)).toBe(true);
      expect(
        after
          .map((r) => r.details.days_ago)
          .filter((d) => d !== undefined)
          .sort(),
      ).toEqual([1, 29]);
      expect(before.length - after.length).toBe(3);
    });
  });
});
