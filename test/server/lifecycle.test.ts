import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { findOrganizationBySlug } from '../../src/identity/organizations.repo.js';
import { findUserByEmail } from '../../src/identity/users.repo.js';
import { ProvisioningError } from '../../src/provisioning/load.js';
import { verifyPassword } from '../../src/security/passwords.js';
import { SPEC_EXAMPLE, writeFile } from '../support/files.js';
import { type ServerStorage, type TestServer, serverBackends, startTestServer } from '../support/server.js';

const setupForm = (token: string) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({
    token,
    organization_name: 'Acme Labs',
    organization_slug: 'acme',
    email: 'owner@acme.test',
    password: 'Own3r-password',
  }).toString(),
});

/** A POST whose body is sent in two parts, the second only when asked: an in-flight request. */
function slowPost(url: string, path: string, body: string) {
  const target = new URL(path, url);
  const half = Math.floor(body.length / 2);
  let release!: () => void;
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.write(body.slice(0, half));
    release = () => req.end(body.slice(half));
  });
  return { response, finish: () => release() };
}

const connections = (server: TestServer) =>
  new Promise<number>((resolve) => server.running.app.server.getConnections((_e: Error | null, n: number) => resolve(n)));

async function until(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!(await condition())) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(serverBackends)('server lifecycle on $name', (backend) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  async function storageFor(): Promise<ServerStorage> {
    const storage = await backend.prepare();
    cleanups.push(() => storage.cleanup());
    return storage;
  }
  async function start(storage: ServerStorage, extra: Partial<Parameters<typeof startTestServer>[0]> = {}): Promise<TestServer> {
    const server = await startTestServer({ ...storage.options, ...extra });
    cleanups.push(() => server.stop());
    return server;
  }

  it('data survives a restart, and a set-up installation prints no link', async () => {
    const storage = await storageFor();
    const first = await start(storage);
    expect((await first.fetch('/readyz')).status).toBe(200);
    const token = new URL(first.setupLink!).searchParams.get('token')!;
    expect((await first.fetch('/setup', setupForm(token))).status).toBe(201);
    await first.stop();

    const second = await start(storage);
    expect(second.setupLink).toBeUndefined();
    expect((await second.fetch('/readyz')).status).toBe(200);
    const org = await findOrganizationBySlug(second.running.database.db, 'acme');
    expect(org?.name).toBe('Acme Labs');
    const owner = await findUserByEmail(second.running.database.db, 'owner@acme.test');
    expect(await verifyPassword(owner!.password_hash, 'Own3r-password')).toBe(true);
    // The used link stays used across restarts.
    expect((await second.fetch(`/setup?token=${encodeURIComponent(token)}`)).status).toBe(404);
  });

  it('a provisioning file given at start is applied before serving, and again idempotently on restart', async () => {
    const storage = await storageFor();
    const first = await start(storage, { overrides: { provisionFile: SPEC_EXAMPLE } });
    expect(first.setupLink).toBeUndefined();
    const hash = (await findUserByEmail(first.running.database.db, 'admin@acme.test'))!.password_hash;
    await first.stop();
    const second = await start(storage, { overrides: { provisionFile: SPEC_EXAMPLE } });
    expect((await findUserByEmail(second.running.database.db, 'admin@acme.test'))!.password_hash).toBe(hash);
  });

  it('an invalid provisioning file stops the start, applying nothing', async () => {
    const storage = await storageFor();
    const bad = await writeFile(
      'bad.yaml',
      'organizations:\n  - slug: acme\n    name: Acme\n    users:\n      - { email: a@acme.test, role: boss }\n',
    );
    await expect(startTestServer({ ...storage.options, overrides: { provisionFile: bad } })).rejects.toBeInstanceOf(ProvisioningError);
    const server = await start(storage);
    expect(server.setupLink).toBeDefined();
    expect(await findOrganizationBySlug(server.running.database.db, 'acme')).toBeUndefined();
  });

  it('graceful shutdown: an in-flight request completes, new connections are refused, then the database closes', async () => {
    const storage = await storageFor();
    const server = await start(storage);
    const token = new URL(server.setupLink!).searchParams.get('token')!;
    const inflight = slowPost(server.url, '/setup', setupForm(token).body);
    await until(async () => (await connections(server)) > 0);
    await new Promise((r) => setTimeout(r, 100)); // the request line and headers have been read

    let closed = false;
    const closing = server.running.close().then(() => {
      closed = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(false);
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();

    inflight.finish();
    const response = await inflight.response;
    expect(response.status).toBe(201);
    expect(response.body).toMatch(/Acme Labs/);
    await closing;
    expect(closed).toBe(true);
    await expect(server.running.database.db.selectFrom('organizations').selectAll().execute()).rejects.toThrow();

    // What the in-flight request wrote was committed.
    const again = await start(storage);
    expect(await findOrganizationBySlug(again.running.database.db, 'acme')).toBeDefined();
  });

  it('a client that never finishes its request holds shutdown only for the grace period', async () => {
    const storage = await storageFor();
    const server = await start(storage, { shutdownGraceMs: 300 });
    const stuck = slowPost(server.url, '/setup', 'token=abcdefghijklmnopqrstuvwxyz');
    stuck.response.catch(() => {}); // its connection is cut
    await until(async () => (await connections(server)) > 0);
    const started = Date.now();
    await server.running.close();
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('/readyz is 503 (problem+json, Retry-After) when the database is unreachable, /healthz stays 200', async () => {
    const storage = await storageFor();
    const server = await start(storage);
    await server.running.database.close();
    const ready = await server.fetch('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(ready.headers.get('retry-after')).toBeTruthy();
    expect((await server.fetch('/healthz')).status).toBe(200);
  });
});
