import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DatabaseHandle, openDatabase } from '../../src/storage/database.js';
import { migrateToLatest } from '../../src/storage/migrate.js';
import { allMigrations } from '../../src/modules.js';
import { apiKey } from '../api/support.js';
import { addSensor, type SeededOrg, seedOrganization } from '../readings/fixtures.js';
import { LISTENING, type SpawnedCli, spawnServe } from '../support/cli.js';
import { TEST_DATABASE_URL, type ThrowawayDatabase, createThrowawayDatabase } from '../support/databases.js';
import { type Receiver, startReceiver } from '../webhooks/receiver.js';

/**
 * Several server processes on one PostgreSQL (issue 13): batches for the same sensors arriving
 * at both at once raise each alarm once; both nodes' periodic checks raise each offline alarm
 * once; each event reaches the receiver once per attempt, every attempt made by one process; and
 * a node killed (SIGKILL) in the middle of a delivery loses nothing: after the restart the event
 * arrives, with the same webhook-id.
 */

const SECRETS_KEY = randomBytes(32).toString('base64');

interface Node {
  cli: SpawnedCli;
  url: string;
  fetch(path: string, init?: RequestInit): Promise<Response>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

async function startNode(database: ThrowawayDatabase, env: Record<string, string> = {}): Promise<Node> {
  const cli = spawnServe(database.url, [], {
    SECRETS_KEY,
    ALARM_CHECK_INTERVAL: '1',
    WEBHOOK_ALLOW_PRIVATE: 'true',
    WEBHOOK_RETRY_SCHEDULE: '200ms,200ms,200ms',
    WEBHOOK_TIMEOUT: '1',
    ...env,
  });
  const [, url] = await cli.waitFor(LISTENING, 60_000);
  return {
    cli,
    url: url!,
    fetch: (path, init) => fetch(new URL(path, url), init),
    stop: async (signal = 'SIGTERM') => {
      cli.child.kill(signal);
      await cli.exited;
    },
  };
}

describe.skipIf(!TEST_DATABASE_URL)('alarms and webhooks with two server processes on one PostgreSQL', () => {
  let database: ThrowawayDatabase;
  let handle: DatabaseHandle;
  let receiver: Receiver;
  let nodes: Node[] = [];
  let org: SeededOrg;
  let key: string;

  beforeAll(async () => {
    database = await createThrowawayDatabase();
    handle = await openDatabase({ databaseUrl: database.url, poolSize: 4 });
    await migrateToLatest(handle.db, allMigrations());
    receiver = await startReceiver();
    org = await seedOrganization(handle.db, `two-${Math.random().toString(36).slice(2, 8)}`);
    key = await apiKey(handle.db, { id: org.organizationId, ownerId: org.userId }, [
      'alarms:write',
      'alarms:read',
      'webhooks:write',
      'webhooks:read',
    ]);
    nodes = [await startNode(database), await startNode(database)];
  }, 120_000);
  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await receiver?.close();
    await handle?.close();
    await database?.drop();
  });

  const api = async (node: Node, method: string, path: string, body?: unknown) => {
    const response = await node.fetch(path, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    expect(response.status, `${method} ${path}`).toBeLessThan(300);
    const text = await response.text();
    return (text ? JSON.parse(text) : {}) as { data: any };
  };

  it('each alarm raised once, each event delivered once per attempt, every attempt by one process', async () => {
    const hook = await api(nodes[0]!, 'POST', '/v1/webhooks', { url: receiver.url, event_types: ['alarm.triggered', 'sensor.offline'] });
    receiver.secrets = [hook.data.secret];
    // The first attempt of every event fails: retries are attempted by whichever node claims them.
    const seen = new Set<string>();
    receiver.answer = (request) => {
      if (seen.has(request.id)) return 200;
      seen.add(request.id);
      return 503;
    };
    const keys = Array.from({ length: 12 }, (_, i) => `s${i}`);
    const sensors = await Promise.all(keys.map((k) => addSensor(handle.db, org, k)));
    for (const [i, sensorId] of sensors.entries()) {
      await api(nodes[i % 2]!, 'POST', '/v1/alarm-thresholds', {
        sensor_id: sensorId,
        max: 10,
        ...(i < 4 && { offline_after_seconds: 60 }),
      });
    }
    // Silent since long ago: both nodes' checks see the four offline watches at once.
    await sql`update alarm_thresholds set created_at = now() - interval '1 hour' where offline_after_seconds is not null`.execute(
      handle.db,
    );
    // The same out-of-range readings sent to both nodes at once, several times over.
    const now = Date.now();
    const batch = (offset: number) =>
      JSON.stringify(
        keys
          .slice(4)
          .flatMap((sensor) => [0, 1, 2].map((j) => ({ sensor, ts: new Date(now - (offset + j) * 1000).toISOString(), value: 20 + j }))),
      );
    const sends = [0, 3, 6, 9].flatMap((offset) =>
      nodes.map((node) =>
        node.fetch('/v1/ingest', {
          method: 'POST',
          headers: { authorization: `Bearer ${org.deviceToken}`, 'content-type': 'application/json' },
          body: batch(offset),
        }),
      ),
    );
    for (const response of await Promise.all(sends)) expect(response.status).toBe(200);

    await expect
      .poll(async () => Number((await sql<{ n: number }>`select count(*)::int as n from alarms`.execute(handle.db)).rows[0]!.n), {
        timeout: 20_000,
      })
      .toBe(12);
    const perThreshold = await sql<{ threshold_id: string; kind: string; n: number }>`
      select threshold_id, kind, count(*)::int as n from alarms group by threshold_id, kind`.execute(handle.db);
    expect(perThreshold.rows.every((r) => r.n === 1)).toBe(true);
    expect(perThreshold.rows.filter((r) => r.kind === 'offline')).toHaveLength(4);

    // Every event: one failed attempt, then one success; never two processes on one attempt.
    await expect.poll(() => receiver.received.filter((d) => d.status === 200).length, { timeout: 20_000 }).toBe(12);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const byId = new Map<string, number[]>();
    for (const d of receiver.received) byId.set(d.id, [...(byId.get(d.id) ?? []), d.status]);
    expect(byId.size).toBe(12);
    for (const statuses of byId.values()) expect(statuses).toEqual([503, 200]);
    const attempts = await sql<{ n: number; distinct_attempts: number }>`
      select count(*)::int as n, count(distinct (task_id, attempt))::int as distinct_attempts from webhook_deliveries`.execute(handle.db);
    expect(attempts.rows[0]).toEqual({ n: 24, distinct_attempts: 24 });
    await api(nodes[0]!, 'DELETE', `/v1/webhooks/${hook.data.id}`);
  }, 90_000);

  it('a node killed mid-delivery: after the restart the event arrives, with the same webhook-id', async () => {
    const hook = await api(nodes[0]!, 'POST', '/v1/webhooks', { url: receiver.url, event_types: ['alarm.triggered'] });
    receiver.secrets = [hook.data.secret];
    receiver.received.length = 0;
    // Only one node, so that the attempt in flight is the killed node's.
    await nodes[1]!.stop();
    let hang = true;
    let hanging: (() => void) | undefined;
    const attempted = new Promise<void>((resolve) => {
      hanging = resolve;
    });
    receiver.answer = async () => {
      if (!hang) return 200;
      hanging?.();
      await new Promise((resolve) => setTimeout(resolve, 30_000));
      return 200;
    };
    const sensorId = await addSensor(handle.db, org, 'killed');
    await api(nodes[0]!, 'POST', '/v1/alarm-thresholds', { sensor_id: sensorId, max: 0 });
    const response = await nodes[0]!.fetch('/v1/ingest', {
      method: 'POST',
      headers: { authorization: `Bearer ${org.deviceToken}`, 'content-type': 'application/json' },
      body: JSON.stringify([{ sensor: 'killed', ts: new Date().toISOString(), value: 5 }]),
    });
    expect(response.status).toBe(200);
    await attempted;
    await nodes[0]!.stop('SIGKILL');
    hang = false;
    nodes = [await startNode(database)];
    await expect
      .poll(() => receiver.received.filter((d) => d.status === 200 && d.body.type === 'alarm.triggered').length, { timeout: 30_000 })
      .toBe(1);
    const delivered = receiver.received.find((d) => d.status === 200)!;
    expect(delivered.verifiedWith).toEqual([hook.data.secret]);
    const event = await sql<{
      id: string;
    }>`select id from events where type = 'alarm.triggered' and data->>'sensor_id' = ${sensorId}`.execute(handle.db);
    expect(delivered.id).toBe(`msg_${event.rows[0]!.id.replaceAll('-', '')}`);
  }, 90_000);
});
