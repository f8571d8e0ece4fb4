import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LISTENING, type SpawnedCli, spawnServe } from '../support/cli.js';
import { TEST_DATABASE_URL, type ThrowawayDatabase, createThrowawayDatabase } from '../support/databases.js';
import { writeFile } from '../support/files.js';
import { freePort, tempDir } from '../support/server.js';
import { ACME, BETA, PROVISIONING } from './fixtures.js';

/**
 * MQTT_URL (SPEC §8): two `sensorcloud serve` processes on one PostgreSQL consume the shared
 * subscription of a Mosquitto broker configured as docs/mqtt.md says (devices authenticated by
 * serial and token, each allowed to write only its own topic, the servers allowed to read them
 * all). The broker hands each message to one node: every reading is stored, each message received
 * once across the two nodes, and both nodes take part.
 */

/** A server process starts in seconds, or in a minute on a loaded machine. */
const STARTUP_MS = 120_000;
const MESSAGES = 200;

/** Mosquitto as docs/mqtt.md configures it, on a port of its own, with nothing persisted. */
async function startMosquitto(port: number): Promise<{ child: ChildProcess; stop(): Promise<void> }> {
  const dir = await tempDir('sensorcloud-mosquitto-');
  const passwords = path.join(dir, 'passwd');
  await fs.writeFile(passwords, '');
  for (const [user, password] of [
    ['sensorcloud', 'server-secret'],
    [ACME.serial, ACME.token],
    [BETA.serial, BETA.token],
  ])
    execFileSync('mosquitto_passwd', ['-b', passwords, user!, password!]);
  await fs.writeFile(
    path.join(dir, 'acl'),
    ['user sensorcloud', 'topic read devices/+/readings', '', 'pattern write devices/%u/readings', ''].join('\n'),
  );
  const conf = path.join(dir, 'mosquitto.conf');
  await fs.writeFile(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous false',
      `password_file ${passwords}`,
      `acl_file ${path.join(dir, 'acl')}`,
      'persistence false',
      'max_queued_messages 100000',
      // Run as whoever runs the test (root would otherwise switch to a user that cannot read these files).
      `user ${os.userInfo().username}`,
      '',
    ].join('\n'),
  );
  await fs.chmod(passwords, 0o600);
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  for (let i = 0; ; i++) {
    const up = await mqtt
      .connectAsync(`mqtt://127.0.0.1:${port}`, { username: 'sensorcloud', password: 'server-secret', reconnectPeriod: 0 })
      .then((c) => c.endAsync().then(() => true))
      .catch(() => false);
    if (up) break;
    if (i >= 100 || child.exitCode !== null) throw new Error(`mosquitto did not start:\n${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    child,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(undefined)));
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

describe.skipIf(!TEST_DATABASE_URL)('MQTT_URL: two nodes on the shared subscription of a Mosquitto broker', () => {
  let database: ThrowawayDatabase;
  let broker: Awaited<ReturnType<typeof startMosquitto>>;
  let brokerPort: number;
  const nodes: { cli: SpawnedCli; url: string }[] = [];

  beforeAll(async () => {
    brokerPort = await freePort();
    broker = await startMosquitto(brokerPort);
    database = await createThrowawayDatabase();
    const file = await writeFile('mqtt-shared.yaml', PROVISIONING);
    // The first node migrates and provisions; the second starts on the ready database.
    for (const n of [0, 1]) {
      const cli = spawnServe(database.url, ['--provision', file], {
        MQTT_URL: `mqtt://sensorcloud:server-secret@127.0.0.1:${brokerPort}`,
        MQTT_CLIENT_ID: `test-node-${n}`,
        MQTT_SUBSCRIBERS: '4',
      });
      const [, url] = await cli.waitFor(LISTENING, STARTUP_MS);
      nodes.push({ cli, url: url! });
    }
    // Both nodes' connections have subscribed.
    await Promise.all(nodes.map(({ cli }) => cli.waitFor(/consuming MQTT readings/, STARTUP_MS)));
  }, 300_000);

  afterAll(async () => {
    for (const { cli } of nodes) {
      cli.child.kill('SIGTERM');
      await cli.exited;
    }
    await broker?.stop();
    await database?.drop();
  });

  const received = async (url: string) => {
    const text = await (await fetch(`${url}/metrics`)).text();
    return Number(/^mqtt_messages_received_total (\d+)/m.exec(text)?.[1] ?? 0);
  };

  const stored = async (url: string) => {
    const auth = { headers: { authorization: `Bearer ${ACME.apiKey}` } };
    const sensors = (await (await fetch(`${url}/v1/sensors?limit=100`, auth)).json()) as { data: { id: string; key: string }[] };
    const temp = sensors.data.find((s) => s.key === 'temp')!;
    const page = (await (
      await fetch(`${url}/v1/sensors/${temp.id}/readings?from=2023-01-01T00:00:00Z&to=2023-12-31T00:00:00Z&limit=1000`, auth)
    ).json()) as {
      data: unknown[];
    };
    return page.data.length;
  };

  it('every message is stored, each received by one node only, and both nodes take part', async () => {
    // Subscriptions settle on the broker shortly after the nodes report them.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const device: MqttClient = await mqtt.connectAsync(`mqtt://127.0.0.1:${brokerPort}`, {
      protocolVersion: 5,
      username: ACME.serial,
      password: ACME.token,
      reconnectPeriod: 0,
    });
    const start = Date.UTC(2023, 0, 1);
    await Promise.all(
      Array.from({ length: MESSAGES }, (_, i) =>
        device.publishAsync(
          `devices/${ACME.serial}/readings`,
          JSON.stringify({ sensor: 'temp', ts: new Date(start + i * 60_000).toISOString(), value: i }),
          { qos: 1 },
        ),
      ),
    );
    // The broker refuses (drops) a device's publish to another device's topic: nothing is stored.
    await device
      .publishAsync(`devices/${BETA.serial}/readings`, JSON.stringify({ sensor: 'temp', ts: '2023-06-01T00:00:00Z', value: 1 }), {
        qos: 1,
      })
      .catch(() => {});
    await device.endAsync();

    await expect.poll(() => stored(nodes[0]!.url), { timeout: 20_000, interval: 200 }).toBe(MESSAGES);
    const counts = await Promise.all(nodes.map(({ url }) => received(url)));
    expect(counts[0]! + counts[1]!).toBe(MESSAGES);
    expect(counts[0]).toBeGreaterThan(0);
    expect(counts[1]).toBeGreaterThan(0);
  }, 60_000);
});
