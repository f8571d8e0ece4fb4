import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { spawnCli } from '../support/cli.js';
import { TEST_DATABASE_URL, createThrowawayDatabase } from '../support/databases.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

/**
 * Issue 11: a database blip must not take the service down. The server runs as its own process
 * (`sensorcloud serve`) on the machine's PostgreSQL, reached through a TCP forwarder the test
 * controls, under ingest and token load. Its connections are terminated by PostgreSQL
 * (pg_terminate_backend: SQLSTATE 57P01), then cut and refused at the network for two seconds.
 * Every answer must be a 2xx or a 503 with Retry-After, the process must stay up, it must serve
 * again within seconds of the database coming back, and every reading it acknowledged must be
 * stored.
 */

const SPEC_EXAMPLE = fileURLToPath(new URL('../fixtures/spec-example.yaml', import.meta.url));
const DEVICE_TOKEN = 'sc_dev_acme0001000000000000000000000';
const M2M = `Basic ${Buffer.from('acme-m2m:acme-m2m-secret').toString('base64')}`;
const WORKERS = 6;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!TEST_DATABASE_URL)('database faults (PostgreSQL)', () => {
  it('terminated and refused connections under ingest and token load: only 2xx or 503, the process lives, service returns, nothing acknowledged is lost', async () => {
    const database = await createThrowawayDatabase();
    const upstream = new URL(TEST_DATABASE_URL!);
    const proxy = await startTcpProxy(upstream.hostname, Number(upstream.port || 5432));
    const proxied = new URL(database.url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    const cli = spawnCli(['serve', '--provision', SPEC_EXAMPLE], {
      DATABASE_URL: proxied.toString(),
      DATA_DIR: undefined,
      SENSORCLOUD_PROVISION: undefined,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      OAUTH_RATE_LIMIT_IP: '0',
      OAUTH_RATE_LIMIT_CLIENT: '0',
    });
    try {
      const [, url] = await cli.waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/);
      const statuses = new Map<number, number>();
      const bad: string[] = [];
      const acknowledged: number[] = [];
      const base = Date.UTC(2026, 0, 1);
      let sequence = 0;
      let running = true;

      const record = async (kind: string, response: Response) => {
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        const body = await response.text();
        if (response.status === 503) {
          if (!response.headers.get('retry-after')) bad.push(`${kind} 503 without Retry-After`);
          if (kind === 'token' && JSON.parse(body).error !== 'temporarily_unavailable') bad.push(`token 503: ${body}`);
          if (kind === 'ingest' && !response.headers.get('content-type')?.startsWith('application/problem+json'))
            bad.push(`ingest 503: ${body}`);
        } else if (response.status < 200 || response.status > 299) {
          bad.push(`${kind} ${response.status}: ${body.slice(0, 300)}`);
        }
      };
      const worker = async () => {
        while (running) {
          const ts = base + sequence++;
          const ingest = await fetch(`${url}/v1/ingest`, {
            method: 'POST',
            headers: { authorization: `Bearer ${DEVICE_TOKEN}`, 'content-type': 'application/json' },
            body: JSON.stringify({ readings: [{ sensor: 'temp', ts: new Date(ts).toISOString(), value: 4.5 }] }),
          });
          if (ingest.status === 200) acknowledged.push(ts);
          await record('ingest', ingest);
          await record(
            'token',
            await fetch(`${url}/oauth/token`, {
              method: 'POST',
              headers: { authorization: M2M, 'content-type': 'application/x-www-form-urlencoded' },
              body: 'grant_type=client_credentials',
            }),
          );
        }
      };
      const terminate = () =>
        admin.query('select count(pg_terminate_backend(pid)) as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [
          database.name,
        ]);

      const load = Array.from({ length: WORKERS }, worker);
      await sleep(1500);
      const terminated = [];
      for (let round = 0; round < 3; round++) {
        terminated.push(Number((await terminate()).rows[0].n));
        await sleep(1200);
      }
      // The database away for two seconds: connections cut, new ones refused.
      proxy.refuse();
      await sleep(300);
      const readyWhileAway = await fetch(`${url}/readyz`);
      expect(readyWhileAway.status).toBe(503);
      expect(readyWhileAway.headers.get('retry-after')).toBeTruthy();
      await sleep(1700);
      proxy.restore();
      const back = Date.now();
      let readyAgain = 0;
      while (Date.now() - back < 10_000) {
        if ((await fetch(`${url}/readyz`)).status === 200) {
          readyAgain = Date.now() - back;
          break;
        }
        await sleep(100);
      }
      await sleep(1500);
      running = false;
      await Promise.all(load);

      const tried = [...statuses.values()].reduce((a, b) => a + b, 0);
      console.log(
        `database faults: ${tried} requests, statuses ${JSON.stringify(Object.fromEntries(statuses))}, backends terminated per round ${terminated.join('/')}, ready ${readyAgain} ms after the database returned`,
      );
      expect(terminated.every((n) => n > 0)).toBe(true);
      // On failure, the server's own account of the unexpected errors.
      expect(
        bad,
        cli
          .output()
          .stdout.split('\n')
          .filter((line) => line.includes('"level":50'))
          .slice(0, 3)
          .join('\n'),
      ).toEqual([]);
      expect(statuses.get(503) ?? 0).toBeGreaterThan(0); // the faults were felt…
      expect(statuses.get(200) ?? 0).toBeGreaterThan(tried / 2); // …and did not stop the service
      expect(readyAgain).toBeGreaterThan(0);
      expect(readyAgain).toBeLessThan(5_000);
      expect(cli.child.exitCode).toBeNull();

      // After the faults: full service on both paths.
      const after = await fetch(`${url}/v1/ingest`, {
        method: 'POST',
        headers: { authorization: `Bearer ${DEVICE_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify([{ sensor: 'temp', ts: new Date(base - 1).toISOString(), value: 1 }]),
      });
      expect(after.status).toBe(200);
      const token = await fetch(`${url}/oauth/token`, {
        method: 'POST',
        headers: { authorization: M2M, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
      });
      expect(token.status).toBe(200);

      // Every acknowledged reading is stored.
      const direct = new pg.Client({ connectionString: database.url });
      await direct.connect();
      try {
        const { rows } = await direct.query('select count(*)::int as n from readings where ts = any($1::timestamptz[])', [
          acknowledged.map((ts) => new Date(ts).toISOString()),
        ]);
        expect(rows[0].n).toBe(acknowledged.length);
      } finally {
        await direct.end();
      }
      expect(acknowledged.length).toBeGreaterThan(0);
    } finally {
      cli.child.kill('SIGKILL');
      await cli.exited;
      await admin.end();
      await proxy.close();
      await database.drop();
    }
  }, 90_000);
});
