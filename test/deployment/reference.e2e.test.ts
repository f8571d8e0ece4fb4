import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DatabaseHandle, openDatabase } from '../../src/storage/database.js';
import { migrateToLatest } from '../../src/storage/migrate.js';
import { allMigrations } from '../../src/modules.js';
import { createOrg } from '../api/support.js';
import { LISTENING, type SpawnedCli, spawnServe } from '../support/cli.js';
import { TEST_DATABASE_URL, type ThrowawayDatabase, createThrowawayDatabase } from '../support/databases.js';
import { rawRequest } from '../support/http.js';
import { TEST_REDIS_URL } from '../support/redis.js';
import { freePort, tempDir } from '../support/server.js';

/**
 * The reference deployment of docs/operations.md (issue 17): the doc's HAProxy file, read from the
 * doc with only its addresses replaced, in front of two `sensorcloud serve` processes sharing the
 * doc's environment on one PostgreSQL. HTTP is redirected to HTTPS; requests reach both nodes; a
 * node sent SIGTERM is taken out by the /readyz checks and requests keep succeeding; the nodes
 * believe the X-Forwarded-For HAProxy adds, and only its hop.
 */

const HAPROXY = (() => {
  try {
    execFileSync('haproxy', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const DOC = new URL('../../docs/operations.md', import.meta.url);
/** A server process starts in seconds, or in a minute on a loaded machine. */
const STARTUP_MS = 120_000;
/** The client's own address: HAProxy (127.0.0.1) forwards it, so the nodes must not see 127.0.0.1. */
const CLIENT_ADDRESS = '127.0.0.2';

/** A line pattern of the doc's HAProxy file and what its lines become (given the pattern's groups). */
type Edit = [pattern: RegExp, replace: (...groups: string[]) => string];

/** The fenced ```haproxy block of docs/operations.md with `edits` applied; each must match a line. */
async function docHaproxyConfig(edits: Edit[]): Promise<string> {
  const blocks = [...(await fs.readFile(DOC, 'utf8')).matchAll(/^```haproxy\n([\s\S]*?)^```$/gm)];
  expect(blocks, 'one ```haproxy block in docs/operations.md').toHaveLength(1);
  let config = blocks[0]![1]!;
  for (const [pattern, replace] of edits) {
    const lines = new RegExp(pattern.source, 'gm');
    expect(config.match(lines), `a line of the doc's HAProxy file matching ${pattern}`).not.toBeNull();
    config = config.replace(lines, (_line, ...groups) => replace(...groups));
  }
  return config;
}

/** `haproxy -f`, its standard error kept: it reports the servers' state changes there. */
function startHaproxy(configFile: string): { child: ChildProcess; stderr(): string } {
  // `-n`: the doc's `maxconn 20000` needs ~40,000 file descriptors, and HAProxy refuses to start
  // without them (strict-limits); a container's hard limit may be lower. The file stays the doc's.
  const child = spawn('haproxy', ['-n', '1000', '-f', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  return { child, stderr: () => stderr };
}

/** SIGTERM, SIGKILL if it lingers, and wait for the exit. */
async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(kill);
}

/** How many GET `route` requests a node answered 200, from its own /metrics (not behind HAProxy). */
async function served(nodeUrl: string, route: string): Promise<number> {
  const text = await (await fetch(`${nodeUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`http_requests_total{method="GET",route="${route}",status="200"} `));
  return Number(line?.split(' ')[1] ?? 0);
}

describe.skipIf(!TEST_DATABASE_URL || !HAPROXY)("the reference deployment: the doc's HAProxy in front of two nodes", () => {
  let dir: string;
  let database: ThrowawayDatabase | undefined;
  let handle: DatabaseHandle | undefined;
  const nodes: SpawnedCli[] = [];
  const nodeUrls: string[] = [];
  let haproxy: ReturnType<typeof startHaproxy> | undefined;
  let httpPort: number;
  let publicUrl: string;
  let adminKey: string;
  let agent: Agent;
  let clientAgent: Agent;

  /** A request through HAProxy's HTTPS frontend, trusting the test's certificate only. */
  const viaHttps = (pathname: string, init: Parameters<typeof undiciFetch>[1] = {}, dispatcher = agent) =>
    undiciFetch(`${publicUrl}${pathname}`, { ...init, dispatcher });
  const api = (pathname: string, init: Parameters<typeof undiciFetch>[1] = {}, dispatcher = agent) =>
    viaHttps(pathname, { ...init, headers: { authorization: `Bearer ${adminKey}`, ...init.headers } }, dispatcher);
  /** The status of an authenticated GET through HAProxy, its body read (undici keeps the connection until then). */
  const status = async (pathname: string) => {
    const response = await api(pathname);
    await response.arrayBuffer();
    return response.status;
  };

  beforeAll(async () => {
    dir = await tempDir('sensorcloud-haproxy-');
    database = await createThrowawayDatabase();
    handle = await openDatabase({ databaseUrl: database.url, poolSize: 2 });
    await migrateToLatest(handle.db, allMigrations());
    adminKey = (await createOrg(handle.db, 'deploy')).adminKey;

    // HAProxy wants the certificate and its key in one PEM.
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ]);
    const pem = path.join(dir, 'sensorcloud.pem');
    const certificate = await fs.readFile(cert, 'utf8');
    await fs.writeFile(pem, certificate + (await fs.readFile(key, 'utf8')));
    agent = new Agent({ connect: { ca: certificate } });
    clientAgent = new Agent({ localAddress: CLIENT_ADDRESS, connect: { ca: certificate } });

    const httpsPort = await freePort();
    httpPort = await freePort();
    publicUrl = `https://127.0.0.1:${httpsPort}`;

    // The doc's environment, the same on every node (the replica, MQTT and SMTP are not under test).
    const environment = {
      PUBLIC_URL: publicUrl,
      TRUST_PROXY: '127.0.0.1', // the load balancer
      SECRETS_KEY: randomBytes(32).toString('base64'),
      // Without TEST_REDIS_URL the counters stay in the database, shared all the same.
      REDIS_URL: TEST_REDIS_URL,
    };
    for (const _ of [1, 2]) nodes.push(spawnServe(database.url, [], environment));
    for (const node of nodes) nodeUrls.push((await node.waitFor(LISTENING, STARTUP_MS))[1]!);

    const configFile = path.join(dir, 'haproxy.cfg');
    const config = await docHaproxyConfig([
      [/^(\s*bind ):443 ssl crt \S+$/, (bind) => `${bind}127.0.0.1:${httpsPort} ssl crt ${pem}`],
      [/^(\s*bind ):80$/, (bind) => `${bind}127.0.0.1:${httpPort}`],
      [/^(\s*server node(\d) )10\.0\.0\.2\d:3000( .*)$/, (server, n, rest) => `${server}${new URL(nodeUrls[Number(n) - 1]!).host}${rest}`],
    ]);
    expect(config.match(/^\s*server /gm), 'one server line per node').toHaveLength(nodes.length);
    await fs.writeFile(configFile, config);
    expect(execFileSync('haproxy', ['-c', '-f', configFile], { encoding: 'utf8' })).toMatch(/Configuration file is valid/);

    haproxy = startHaproxy(configFile);
    // Both servers start up (the nodes already answer /readyz); wait for the frontend to listen.
    for (let i = 0; ; i++) {
      const ready = await viaHttps('/readyz').then(
        (response) => response.status === 200,
        () => false,
      );
      if (ready) break;
      if (i >= 100 || haproxy.child.exitCode !== null) throw new Error(`HAProxy did not start:\n${haproxy.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }, 2 * STARTUP_MS);

  afterAll(async () => {
    // Every step, whatever failed before it.
    await Promise.allSettled([
      ...(haproxy ? [stopProcess(haproxy.child)] : []),
      ...nodes.map((node) => stopProcess(node.child)),
      agent?.close(),
      clientAgent?.close(),
    ]);
    await handle?.close().catch(() => {});
    await database?.drop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('redirects http:// to https://, where /readyz and an authenticated API call succeed', async () => {
    const redirect = await rawRequest(`http://127.0.0.1:${httpPort}`, {
      path: '/v1/sensors?limit=1',
      headers: { host: 'sensors.example.com' },
    });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.location).toBe('https://sensors.example.com/v1/sensors?limit=1');

    const ready = await viaHttps('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ok' });
    // Metrics are scraped from each node, not through the public frontend.
    expect((await viaHttps('/metrics')).status).toBe(403);

    const sensors = await api('/v1/sensors');
    expect(sensors.status).toBe(200);
    expect(await sensors.json()).toMatchObject({ data: [] });
    // PUBLIC_URL is the HTTPS frontend: the nodes tell browsers to stay on HTTPS.
    expect(sensors.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
  });

  it('shares requests out among both nodes', async () => {
    const before = await Promise.all(nodeUrls.map((url) => served(url, '/v1/sensors')));
    for (let i = 0; i < 20; i++) expect(await status('/v1/sensors')).toBe(200);
    const counts = (await Promise.all(nodeUrls.map((url) => served(url, '/v1/sensors')))).map((n, i) => n - before[i]!);
    expect(counts.reduce((a, b) => a + b)).toBe(20);
    for (const count of counts) expect(count).toBeGreaterThan(0);
    // And each node is checked on /readyz.
    for (const url of nodeUrls) expect(await served(url, '/readyz')).toBeGreaterThan(0);
  });

  it('believes the address HAProxy forwards, and only that hop', async () => {
    // HAProxy appends its peer's address to the caller's own X-Forwarded-For; the nodes trust
    // 127.0.0.1 (HAProxy) and so believe that hop, not HAProxy's address nor the caller's claim.
    const created = await api(
      '/v1/api-keys',
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.7' },
        body: JSON.stringify({ name: 'forwarded', scopes: ['devices:read'] }),
      },
      clientAgent,
    );
    expect(created.status).toBe(201);
    const { data: key } = (await created.json()) as { data: { id: string } };
    const audit = await api('/v1/audit-events?action=api_key.created');
    expect(audit.status).toBe(200);
    const { data: events } = (await audit.json()) as { data: { target_id: string; source_address: string | null }[] };
    expect(events.find((event) => event.target_id === key.id)?.source_address).toBe(CLIENT_ADDRESS);
  });

  it('takes out a node sent SIGTERM through its /readyz check; requests keep succeeding', async () => {
    const [survivor, leaving] = [nodes[0]!, nodes[1]!];
    leaving.child.kill('SIGTERM');
    // Until the checks mark it down, the leaving node refuses connections and HAProxy redispatches
    // them (never a 503 of retries spent on it); a request caught on a kept-alive connection as the
    // node closes it may still fail. Once it is down, none may.
    const down = /Server sensorcloud\/node2 is DOWN/;
    const deadline = Date.now() + 15_000;
    const during: number[] = [];
    while (!down.test(haproxy!.stderr())) {
      expect(Date.now(), `HAProxy did not mark node2 down:\n${haproxy!.stderr()}`).toBeLessThan(deadline);
      during.push(await status('/v1/sensors').catch(() => 0));
    }
    expect(during).not.toContain(503);
    expect(await leaving.exited).toEqual({ code: 0, signal: null });

    const before = await served(nodeUrls[0]!, '/v1/sensors');
    for (let i = 0; i < 20; i++) expect(await status('/v1/sensors')).toBe(200);
    expect((await served(nodeUrls[0]!, '/v1/sensors')) - before).toBe(20);
    expect(survivor.child.exitCode).toBeNull();
  });
});
