import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findOrganizationBySlug } from '../../src/identity/organizations.repo.js';
import { listMembers } from '../../src/identity/users.repo.js';
import { verifyPassword } from '../../src/security/passwords.js';
import { countRows } from '../support/databases.js';
import { type ServerStorage, type TestServer, serverBackends, startTestServer } from '../support/server.js';

const form = (fields: Record<string, string>) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(fields).toString(),
});

describe.each(serverBackends)('first-run setup over HTTP on $name', (backend) => {
  let storage: ServerStorage;
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    storage = await backend.prepare();
    server = await startTestServer(storage.options);
  });
  afterAll(async () => {
    await server?.stop();
    await storage?.cleanup();
  });

  const db = () => server.running.database.db;
  const valid = () => ({
    token,
    organization_name: 'Acme Labs',
    organization_slug: 'acme',
    name: 'Olga Owner',
    email: 'Olga@Acme.test',
    password: 'Own3r-password',
  });

  it('an empty installation prints a one-time link, and nobody exists yet (no default password)', async () => {
    expect(server.setupLink, server.stdout).toBeDefined();
    const link = new URL(server.setupLink!);
    expect(link.origin).toBe(server.url);
    expect(link.pathname).toBe('/setup');
    token = link.searchParams.get('token')!;
    expect(token).toMatch(/^sc_setup_[A-Za-z0-9_-]{20,}$/);
    expect(await countRows(db(), 'users')).toBe(0);
    expect(await countRows(db(), 'organizations')).toBe(0);
    // The token itself is kept only as a hash.
    expect(JSON.stringify(await db().selectFrom('setup_tokens').selectAll().execute())).not.toContain(token);
  });

  it('the link opens the setup form', async () => {
    const response = await fetch(server.setupLink!);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    const html = await response.text();
    for (const name of ['organization_name', 'organization_slug', 'name', 'email', 'password'])
      expect(html).toMatch(new RegExp(`<input[^>]+name="${name}"`));
    expect(html).toContain(`<input type="hidden" name="token" value="${token}">`);
    expect(html).toMatch(/<form method="post" action="\/setup">/);
    expect(html).toMatch(/<input[^>]+name="password"[^>]+type="password"/);
  });

  it('a bad or missing token is 404', async () => {
    for (const path of ['/setup?token=sc_setup_bogus', '/setup', `/setup?token=${token}x`]) {
      const response = await server.fetch(path);
      expect(response.status, path).toBe(404);
      expect(await response.text()).toMatch(/invalid or has already been used/);
    }
  });

  it('invalid input re-renders the form with the problems, creating nothing and keeping the link valid', async () => {
    const response = await server.fetch('/setup', form({ ...valid(), organization_slug: 'Not A Slug', email: 'nope', password: 'short' }));
    expect(response.status).toBe(400);
    const html = await response.text();
    expect(html).toMatch(/role="alert">Organization slug must be/);
    expect(html).toMatch(/role="alert">Email must be an email address/);
    expect(html).toMatch(/role="alert">Password must be at least 10 characters/);
    expect(html).toContain('value="Acme Labs"'); // what was typed is kept…
    expect(html).not.toContain('value="short"'); // …except the password
    expect(await countRows(db(), 'organizations')).toBe(0);
    expect((await fetch(server.setupLink!)).status).toBe(200);
  });

  it('markup in the input is escaped when the form is shown again', async () => {
    const response = await server.fetch('/setup', form({ ...valid(), organization_name: '"><script>alert(1)</script>', password: 'x' }));
    expect(response.status).toBe(400);
    const html = await response.text();
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).toContain('&quot;&gt;&lt;script&gt;');
  });

  it('a POST with an unknown token is refused and creates nothing', async () => {
    const response = await server.fetch('/setup', form({ ...valid(), token: 'sc_setup_bogus' }));
    expect(response.status).toBe(409);
    expect(await countRows(db(), 'organizations')).toBe(0);
    expect(await countRows(db(), 'users')).toBe(0);
  });

  it('the form creates the organization and its owner exactly once, even when submitted concurrently', async () => {
    const responses = await Promise.all(
      ['acme', 'acme-2', 'acme-3'].map((slug) =>
        server
          .fetch('/setup', form({ ...valid(), organization_slug: slug }))
          .then(async (r) => ({ status: r.status, html: await r.text() })),
      ),
    );
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 409, 409]);
    const created = responses.find((r) => r.status === 201)!;
    expect(created.html).toMatch(/Acme Labs/);
    expect(created.html).toMatch(/olga@acme.test/);
    // It ends with the way in, not a dead end.
    expect(created.html).toContain('href="/login?return_to=%2Fconsole"');
    expect(created.html).toContain('href="/login?return_to=%2Fconsole%2Fdeveloper%2Fapi-keys"');

    const organizations = await db().selectFrom('organizations').selectAll().execute();
    expect(organizations).toHaveLength(1);
    expect(organizations[0]!.name).toBe('Acme Labs');
    const members = await listMembers(db(), organizations[0]!.id);
    expect(members.map((m) => [m.email, m.role, m.name])).toEqual([['olga@acme.test', 'owner', 'Olga Owner']]);
    expect(await verifyPassword(members[0]!.password_hash, 'Own3r-password')).toBe(true);
    expect(await countRows(db(), 'users')).toBe(1);
  });

  it('the link works once: the same token again is 409, and the page is gone', async () => {
    const again = await server.fetch('/setup', form({ ...valid(), organization_slug: 'other' }));
    expect(again.status).toBe(409);
    expect(await findOrganizationBySlug(db(), 'other')).toBeUndefined();
    expect((await fetch(server.setupLink!)).status).toBe(404);
  });
});
