import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { FastifyBaseLogger } from 'fastify';
import { sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASE_URL } from '../support/databases.js';
import { specExampleYaml } from '../support/files.js';
import { type TestServer, freePort, startTestServer, tempDir } from '../support/server.js';

/**
 * DATABASE_REPLICA_URL on a real streaming replica, built with the commands of docs/operations.md
 * ("A streaming replica for reports": a replication role, then pg_basebackup -R -X stream -C -S).
 * Its primary is a cluster of its own (initdb, a free port) rather than the machine's: a base
 * backup copies the whole cluster, whatever other databases it holds (benchmarks' take gigabytes),
 * and a replication slot left behind by a killed run would make the machine's cluster keep its WAL
 * forever. With replay paused on the replica, a reading just ingested is in the latest reading
 * (the primary) but not yet in the range, bins and GraphQL answers (the replica); with the replica
 * stopped, those answer from the primary, with one warning, until the replica is back.
 */

const PG_BIN = '/usr/lib/postgresql/15/bin';
const DEVICE_TOKEN = 'sc_dev_acme0001000000000000000000000';
const API_KEY = 'sk_live_acmeci0000000000000000000000';
const SLOT = 'sensorcloud_test_replica';
const execFileAsync = promisify(execFile);

/** PostgreSQL refuses to run as root: as root (CI), its commands run as the postgres user. */
const asRoot = process.getuid?.() === 0;
const postgresCommand = (command: string, args: string[]) =>
  asRoot
    ? execFileAsync('runuser', ['-u', 'postgres', '--', path.join(PG_BIN, command), ...args])
    : execFileAsync(path.join(PG_BIN, command), args);

interface Cluster {
  dataDir: string;
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function cluster(root: string, name: string, port: number): Cluster {
  const dataDir = path.join(root, name);
  const options = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off`;
  return {
    dataDir,
    url: `postgres://postgres@127.0.0.1:${port}/sensorcloud`,
    start: async () => {
      await postgresCommand('pg_ctl', ['-D', dataDir, '-l', `${dataDir}.log`, '-o', options, '-w', 'start']);
    },
    stop: async () => {
      await postgresCommand('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
    },
  };
}

async function query<Row extends pg.QueryResultRow>(url: string, text: string): Promise<Row[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Row>(text)).rows;
  } finally {
    await client.end();
  }
}

describe.skipIf(!TEST_DATABASE_URL || !existsSync(PG_BIN))('a streaming read replica (DATABASE_REPLICA_URL)', () => {
  let root: string;
  let primary: Cluster;
  let replica: Cluster;
  let replicaRunning = false;
  let server: TestServer | undefined;
  const logLines: { level: number; msg: string }[] = [];
  let sensorId: string;

  const ingest = async (ts: string, value: number) => {
    const response = await fetch(`${server!.url}/v1/ingest`, {
      method: 'POST',
      headers: { authorization: `Bearer ${DEVICE_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ readings: [{ sensor: 'temp', ts, value }] }),
    });
    expect(response.status).toBe(200);
  };
  const get = async (pathname: string) => {
    const response = await server!.fetch(pathname, { headers: { authorization: `Bearer ${API_KEY}` } });
    const body = await response.text();
    expect(response.status, body).toBe(200);
    return JSON.parse(body);
  };
  const rangeTimes = async () =>
    (await get(`/v1/sensors/${sensorId}/readings?from=2026-01-01T00:00:00Z`)).data.map((r: { ts: string }) => r.ts);
  const hourlyCount = async () =>
    (await get(`/v1/sensors/${sensorId}/readings?from=2026-01-01T00:00:00Z&interval=PT1H&aggregate=count`)).data[0]?.count;
  const graphqlTimes = async () => {
    const response = await server!.fetch('/graphql', {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ readings(sensorId: "${sensorId}", from: "2026-01-01T00:00:00Z") { edges { node { ts } } } }` }),
    });
    const body = (await response.json()) as { data: { readings: { edges: { node: { ts: string } }[] } }; errors?: unknown };
    expect(body.errors).toBeUndefined();
    return body.data.readings.edges.map((edge) => edge.node.ts);
  };
  /** Waits until the replica has replayed everything the primary has written so far. */
  const caughtUp = async () => {
    const [current] = await query<{ lsn: string }>(primary.url, 'select pg_current_wal_lsn() as lsn');
    for (let attempt = 0; attempt < 100; attempt++) {
      const [replay] = await query<{ done: boolean }>(replica.url, `select pg_last_wal_replay_lsn() >= '${current!.lsn}' as done`);
      if (replay!.done) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`the replica did not replay up to ${current!.lsn} in 5 s`);
  };

  beforeAll(async () => {
    root = await tempDir('sensorcloud-replica-');
    if (asRoot) await execFileAsync('chown', ['postgres:postgres', root]);
    primary = cluster(root, 'primary', await freePort());
    replica = cluster(root, 'replica', await freePort());
    await postgresCommand('initdb', ['-D', primary.dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '--no-instructions']);
    await primary.start();
    const port = new URL(primary.url).port;
    await query(primary.url.replace('/sensorcloud', '/postgres'), 'create role replicator replication login');
    await query(primary.url.replace('/sensorcloud', '/postgres'), 'create database sensorcloud');
    // docs/operations.md, step 2: the base backup writes primary_conninfo and standby.signal (-R)
    // and creates the replication slot (-C -S). It starts with a spread checkpoint, which paces the
    // new database's pages over minutes: written here at once instead.
    await query(primary.url, 'checkpoint');
    await postgresCommand('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      port,
      '-U',
      'replicator',
      '-D',
      replica.dataDir,
      '-R',
      '-X',
      'stream',
      '-C',
      '-S',
      SLOT,
    ]);
    await replica.start();
    replicaRunning = true;
    const logger = pino({ level: 'info' }, { write: (line: string) => logLines.push(JSON.parse(line)) }) as unknown as FastifyBaseLogger;
    server = await startTestServer({
      databaseUrl: primary.url,
      overrides: { databaseReplicaUrl: replica.url },
      provisioning: specExampleYaml(),
      logger,
    });
    const [sensor] = await query<{ id: string }>(primary.url, "select id from sensors where key = 'temp'");
    sensorId = sensor!.id;
  });

  afterAll(async () => {
    await server?.stop();
    // The replication slot lives in the primary's data directory, removed with it below.
    if (replicaRunning) await replica.stop().catch(() => {});
    await primary?.stop().catch(() => {});
    if (root) await fs.rm(root, { recursive: true, force: true });
  });

  it('answers ranges, bins and GraphQL readings from the replica, and the latest reading from the primary', async () => {
    expect(await query(primary.url, 'select slot_name from pg_replication_slots where active')).toEqual([{ slot_name: SLOT }]);
    await ingest('2026-01-01T00:00:01Z', 4);
    await ingest('2026-01-01T00:00:02Z', 5);
    await caughtUp();
    expect(await rangeTimes()).toEqual(['2026-01-01T00:00:01.000Z', '2026-01-01T00:00:02.000Z']);

    // The replica stops replaying: what is ingested now exists only on the primary.
    await query(replica.url, 'select pg_wal_replay_pause()');
    await ingest('2026-01-01T00:00:03Z', 6);
    expect((await get(`/v1/sensors/${sensorId}/readings/latest`)).data).toMatchObject({ ts: '2026-01-01T00:00:03.000Z', value: 6 });
    expect(await rangeTimes()).toEqual(['2026-01-01T00:00:01.000Z', '2026-01-01T00:00:02.000Z']);
    expect(await hourlyCount()).toBe(2);
    expect(await graphqlTimes()).toEqual(['2026-01-01T00:00:01.000Z', '2026-01-01T00:00:02.000Z']);
    const several = await get(`/v1/readings?sensor_ids=${sensorId}&from=2026-01-01T00:00:00Z`);
    expect(several.data).toHaveLength(2);
    // The pool's connections are read-only by themselves too, should the URL name a writable server.
    const { rows } = await sql<{ default_transaction_read_only: string }>`show default_transaction_read_only`.execute(
      server!.running.replica!.db,
    );
    expect(rows).toEqual([{ default_transaction_read_only: 'on' }]);
  });

  it('reads from the primary while the replica is down, warning once', async () => {
    await replica.stop();
    replicaRunning = false;
    const all = ['2026-01-01T00:00:01.000Z', '2026-01-01T00:00:02.000Z', '2026-01-01T00:00:03.000Z'];
    expect(await rangeTimes()).toEqual(all);
    expect(await hourlyCount()).toBe(3);
    expect(await graphqlTimes()).toEqual(all);
    const warnings = logLines.filter((line) => line.level === 40 && line.msg.startsWith('read replica unavailable'));
    expect(warnings).toHaveLength(1);
  });

  it('goes back to the replica once it answers again', async () => {
    await replica.start();
    replicaRunning = true;
    await caughtUp();
    // Probed every 5 s in the background.
    for (let waited = 0; !logLines.some((line) => line.msg === 'read replica answers again'); waited += 100) {
      if (waited > 10_000) throw new Error('the server did not go back to the replica within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await query(replica.url, 'select pg_wal_replay_pause()');
    await ingest('2026-01-01T00:00:04Z', 7);
    expect(await rangeTimes()).toEqual(['2026-01-01T00:00:01.000Z', '2026-01-01T00:00:02.000Z', '2026-01-01T00:00:03.000Z']);
  });
});
