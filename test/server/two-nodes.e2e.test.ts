import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, parseForms } from '../support/browser.js';
import { LISTENING, spawnServe } from '../support/cli.js';
import { TEST_DATABASE_URL, type ThrowawayDatabase, createThrowawayDatabase } from '../support/databases.js';
import { passwordsOf, specExampleYaml, writeFile } from '../support/files.js';
import { TEST_REDIS_URL } from '../support/redis.js';

/**
 * Two server processes (`sensorcloud serve`, each with its own pool, caches and listener) on one
 * PostgreSQL database, as behind a load balancer: abuse counters are shared by every node (in the
 * database, or in Redis) and survive a restart; revocations reach the other node's caches at once
 * through LISTEN/NOTIFY, not after the caches' 1 s lifetime; a refresh sent to both nodes at once
 * and an invitation sent on one and accepted on the other behave as on one node.
 */

const PROVISIONING = specExampleYaml(`
organizations:
  - slug: beta
    name: Beta Corp
    users:
      - { email: admin@beta.test, password: "Adm1n-pass-beta", role: admin }
`);
const ATTACKER = '203.0.113.66';
const OWNER = '198.51.100.7';
const API_KEY = 'sk_live_acmeci0000000000000000000000';
const DEVICE_TOKEN = 'sc_dev_acme0001000000000000000000000';
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

interface Node {
  url: string;
  fetch(path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
}

async function startNode(database: ThrowawayDatabase, redisUrl: string | undefined): Promise<Node> {
  const file = await writeFile('two-nodes.yaml', PROVISIONING);
  const cli = spawnServe(database.url, ['--provision', file], {
    TRUST_PROXY: 'loopback',
    REDIS_URL: redisUrl,
    OAUTH_RATE_LIMIT_IP: '0',
    OAUTH_RATE_LIMIT_CLIENT: '0',
  });
  const [, url] = await cli.waitFor(LISTENING);
  return {
    url: url!,
    fetch: (path, init) => fetch(new URL(path, url), init),
    stop: async () => {
      cli.child.kill('SIGTERM');
      await cli.exited;
    },
  };
}

const passwordGrant = (node: Node, from: string, password: string) =>
  node.fetch('/oauth/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': from },
    body: JSON.stringify({
      grant_type: 'password',
      client_id: 'acme-password',
      client_secret: 'acme-password-secret',
      username: 'admin@acme.test',
      password,
      scope: '*',
    }),
  });
const clientCredentials = (node: Node, from: string, secret: string) =>
  node.fetch('/oauth/token', {
    method: 'POST',
    headers: { authorization: basic('acme-m2m', secret), 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': from },
    body: 'grant_type=client_credentials',
  });
const withBearer = (node: Node, path: string, credential: string, from = OWNER) =>
  node.fetch(path, { headers: { authorization: `Bearer ${credential}`, 'x-forwarded-for': from } });

const stores = [{ name: 'database', redisUrl: undefined }, ...(TEST_REDIS_URL ? [{ name: 'Redis', redisUrl: TEST_REDIS_URL }] : [])];

describe.skipIf(!TEST_DATABASE_URL).each(stores)('abuse counters shared by two nodes (counters in the $name)', ({ redisUrl }) => {
  let database: ThrowawayDatabase;
  let a: Node;
  let b: Node;
  beforeAll(async () => {
    database = await createThrowawayDatabase();
    a = await startNode(database, redisUrl);
    b = await startNode(database, redisUrl);
  }, 120_000);
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await database?.drop();
  });

  it('wrong passwords split across the nodes count as one budget, on both', async () => {
    for (let i = 0; i < 5; i++) expect((await passwordGrant(i % 2 === 0 ? a : b, ATTACKER, `guess-${i}`)).status).toBe(400);
    expect((await passwordGrant(a, ATTACKER, 'Adm1n-pass-acme')).status).toBe(429);
    expect((await passwordGrant(b, ATTACKER, 'Adm1n-pass-acme')).status).toBe(429);
    expect((await passwordGrant(b, OWNER, 'Adm1n-pass-acme')).status).toBe(200);
  });

  it('wrong client secrets split across the nodes count as one budget, on both', async () => {
    for (let i = 0; i < 10; i++) expect((await clientCredentials(i % 2 === 0 ? a : b, ATTACKER, `wrong-${i}`)).status).toBe(401);
    expect((await clientCredentials(a, ATTACKER, 'acme-m2m-secret')).status).toBe(429);
    expect((await clientCredentials(b, ATTACKER, 'acme-m2m-secret')).status).toBe(429);
    expect((await clientCredentials(a, OWNER, 'acme-m2m-secret')).status).toBe(200);
  });

  it('failed bearer credentials split across the nodes count as one budget; each node refuses from its next failure on', async () => {
    const from = '203.0.113.91';
    for (let i = 0; i < 100; i++)
      expect((await withBearer(i % 2 === 0 ? a : b, '/v1/devices', `sk_live_wrong${i}`, from)).status).toBe(401);
    // The node that did not count the hundredth learns of the block with its next failure.
    await withBearer(b, '/v1/devices', 'sk_live_wrong-a', from);
    await withBearer(a, '/v1/devices', 'sk_live_wrong-b', from);
    expect((await withBearer(a, '/v1/devices', 'sk_live_wrong-c', from)).status).toBe(429);
    expect((await withBearer(b, '/v1/devices', 'sk_live_wrong-d', from)).status).toBe(429);
  });

  it('the counters survive a restart of a node', async () => {
    await a.stop();
    a = await startNode(database, redisUrl);
    // The earlier blocks (2 s and 1 s) may have run out meanwhile; the counts have not: the next
    // wrong guess is the sixth (eleventh) and blocks at once, so even the right one then waits.
    const nextFailure = async (attempt: () => Promise<Response>, failed: number) => {
      for (let status = 429; status === 429; await new Promise((resolve) => setTimeout(resolve, 250))) {
        status = (await attempt()).status;
        if (status !== 429) expect(status).toBe(failed);
      }
    };
    await nextFailure(() => passwordGrant(a, ATTACKER, 'guess-after-restart'), 400);
    expect((await passwordGrant(a, ATTACKER, 'Adm1n-pass-acme')).status).toBe(429);
    await nextFailure(() => clientCredentials(a, ATTACKER, 'wrong-after-restart'), 401);
    expect((await clientCredentials(a, ATTACKER, 'acme-m2m-secret')).status).toBe(429);
  });
});

describe.skipIf(!TEST_DATABASE_URL)('revocations reach the other node at once (LISTEN/NOTIFY)', () => {
  let database: ThrowawayDatabase;
  let a: Node;
  let b: Node;
  let admin: string;
  beforeAll(async () => {
    database = await createThrowawayDatabase();
    a = await startNode(database, undefined);
    b = await startNode(database, undefined);
    admin = ((await (await passwordGrant(a, OWNER, 'Adm1n-pass-acme')).json()) as { access_token: string }).access_token;
  }, 120_000);
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await database?.drop();
  });

  /** Milliseconds until `node` refuses `credential` after `change` (run on the other node) returned. */
  async function refusedAfter(node: Node, path: string, credential: string, change: () => Promise<void>): Promise<number> {
    // Cached on `node` first: without the announcement it would be honoured for up to a second.
    expect((await withBearer(node, path, credential)).status).toBe(200);
    expect((await withBearer(node, path, credential)).status).toBe(200);
    await change();
    const started = performance.now();
    while (performance.now() - started < 2_000) {
      if ((await withBearer(node, path, credential)).status === 401) return performance.now() - started;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return Number.POSITIVE_INFINITY;
  }

  it('an access token revoked on one node is refused on the other within 100 ms', async () => {
    const token = ((await (await passwordGrant(a, OWNER, 'Adm1n-pass-acme')).json()) as { access_token: string }).access_token;
    const elapsed = await refusedAfter(b, '/v1/me', token, async () => {
      const revoke = await a.fetch('/oauth/revoke', {
        method: 'POST',
        headers: { authorization: basic('acme-password', 'acme-password-secret'), 'content-type': 'application/x-www-form-urlencoded' },
        body: `token=${token}`,
      });
      expect(revoke.status).toBe(200);
    });
    console.log(`token revoked on node A: refused on node B after ${elapsed.toFixed(1)} ms`);
    expect(elapsed).toBeLessThan(100);
  });

  it('an API key deleted and a device token rotated on one node are refused on the other within 100 ms', async () => {
    const keys = (await (await withBearer(a, '/v1/api-keys', admin)).json()) as { data: { id: string; prefix?: string }[] };
    const keyElapsed = await refusedAfter(b, '/v1/devices', API_KEY, async () => {
      for (const key of keys.data)
        expect((await a.fetch(`/v1/api-keys/${key.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${admin}` } })).status).toBe(
          204,
        );
    });
    const devices = (await (await withBearer(a, '/v1/devices', admin)).json()) as { data: { id: string }[] };
    const ingest = (node: Node) =>
      node.fetch('/v1/ingest', {
        method: 'POST',
        headers: { authorization: `Bearer ${DEVICE_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify([{ sensor: 'temp', ts: new Date().toISOString(), value: 1 }]),
      });
    expect((await ingest(b)).status).toBe(200);
    expect((await ingest(b)).status).toBe(200);
    expect(
      (await a.fetch(`/v1/devices/${devices.data[0]!.id}/token`, { method: 'POST', headers: { authorization: `Bearer ${admin}` } })).status,
    ).toBe(200);
    const rotated = performance.now();
    let deviceElapsed = Number.POSITIVE_INFINITY;
    while (performance.now() - rotated < 2_000) {
      if ((await ingest(b)).status === 401) {
        deviceElapsed = performance.now() - rotated;
        break;
      }
    }
    console.log(
      `API key deleted on node A: refused on node B after ${keyElapsed.toFixed(1)} ms; device token rotated: ${deviceElapsed.toFixed(1)} ms`,
    );
    expect(keyElapsed).toBeLessThan(100);
    expect(deviceElapsed).toBeLessThan(100);
  });

  it('a refresh sent to both nodes at once (a double submit behind a load balancer): one wins, the other is refused without revoking the grant', async () => {
    for (let round = 0; round < 3; round++) {
      const granted = (await (await passwordGrant(a, OWNER, 'Adm1n-pass-acme')).json()) as { refresh_token: string };
      const refresh = (node: Node, token: string) =>
        node.fetch('/oauth/token', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            grant_type: 'refresh_token',
            refresh_token: token,
            client_id: 'acme-password',
            client_secret: 'acme-password-secret',
          }),
        });
      const answers = await Promise.all([refresh(a, granted.refresh_token), refresh(b, granted.refresh_token)]);
      expect(answers.map((r) => r.status).sort()).toEqual([200, 400]);
      const winner = (await answers.find((r) => r.status === 200)!.json()) as { access_token: string; refresh_token: string };
      expect(((await answers.find((r) => r.status === 400)!.json()) as { error: string }).error).toBe('invalid_grant');
      // Nothing was revoked: the winner's tokens work on both nodes.
      expect((await withBearer(a, '/v1/me', winner.access_token)).status).toBe(200);
      expect((await withBearer(b, '/v1/me', winner.access_token)).status).toBe(200);
      expect((await refresh(b, winner.refresh_token)).status).toBe(200);
    }
  });

  it('an invitation sent through one node is accepted through the other', async () => {
    const invited = await a.fetch('/v1/users', {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'admin@beta.test', role: 'viewer' }),
    });
    expect(invited.status).toBe(202);
    const accept = new URL(((await invited.json()) as { meta: { accept_url: string } }).meta.accept_url);
    const link = accept.pathname + accept.search;
    const person = new Browser(b.url, passwordsOf(PROVISIONING));
    const landing = await person.page(link);
    const signIn = /href="([^"]*)" id="sign-in"/.exec(landing.html)![1]!.replace(/&amp;/g, '&');
    expect((await person.login(signIn, 'admin@beta.test')).status).toBe(303);
    const answer = await person.page(link);
    const form = parseForms(answer.html).find((f) => f.buttons.some((button) => button.name === 'decision' && button.value === 'accept'))!;
    expect((await person.submit(form, {}, { name: 'decision', value: 'accept' })).status).toBe(200);
    const members = (await (await withBearer(a, '/v1/users?limit=1000', admin)).json()) as { data: { email: string; role: string }[] };
    expect(members.data.find((m) => m.email === 'admin@beta.test')?.role).toBe('viewer');
    const theirs = await a.fetch('/oauth/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: 'password',
        client_id: 'acme-password',
        client_secret: 'acme-password-secret',
        username: 'admin@beta.test',
        password: 'Adm1n-pass-beta',
        scope: '*',
      }),
    });
    expect(theirs.status).toBe(200);
  });

  it('the listener comes back after its connection is terminated, and announcements reach the node again', async () => {
    const pgAdmin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await pgAdmin.connect();
    try {
      const listeners = `select pid from pg_stat_activity where datname = $1 and query ilike 'listen %'`;
      const { rows } = await pgAdmin.query(`select pg_terminate_backend(pid) from (${listeners}) l`, [database.name]);
      expect(rows.length).toBe(2); // one per node
      const started = Date.now();
      while ((await pgAdmin.query(listeners, [database.name])).rows.length < 2 && Date.now() - started < 10_000)
        await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await pgAdmin.query(listeners, [database.name])).rows.length).toBe(2);
    } finally {
      await pgAdmin.end();
    }
    const token = ((await (await passwordGrant(a, OWNER, 'Adm1n-pass-acme')).json()) as { access_token: string }).access_token;
    const elapsed = await refusedAfter(b, '/v1/me', token, async () => {
      expect((await a.fetch('/oauth/token', { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    });
    expect(elapsed).toBeLessThan(100);
  });
});
