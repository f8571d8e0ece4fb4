import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LISTENING, spawnServe } from '../support/cli.js';
import { TEST_DATABASE_URL, type ThrowawayDatabase, createThrowawayDatabase } from '../support/databases.js';
import { specExampleYaml, writeFile } from '../support/files.js';
import { freePort } from '../support/server.js';
import { ACME } from './fixtures.js';

/**
 * QoS 1 is acknowledged only once durable (SPEC §8): `sensorcloud serve` on PostgreSQL is killed
 * with SIGKILL the moment PUBACK arrives, started again, and the reading is there.
 */

/** A server process starts in seconds, or in a minute on a loaded machine. */
const STARTUP_MS = 120_000;

describe.skipIf(!TEST_DATABASE_URL)('MQTT QoS 1 durability across kill -9', () => {
  let database: ThrowawayDatabase;
  let file: string;
  beforeAll(async () => {
    database = await createThrowawayDatabase();
    file = await writeFile('mqtt-durability.yaml', specExampleYaml());
  });
  afterAll(() => database?.drop());

  const serve = (mqttPort: number) => spawnServe(database.url, ['--provision', file], { MQTT_PORT: String(mqttPort) });

  it.each([5, 4] as const)(
    'MQTT %s: the reading acknowledged just before SIGKILL is stored after the restart',
    async (version) => {
      const mqttPort = await freePort();
      const first = serve(mqttPort);
      await first.waitFor(/MQTT broker listening/, STARTUP_MS);
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
        protocolVersion: version,
        username: ACME.serial,
        password: ACME.token,
        reconnectPeriod: 0,
      });
      client.on('error', () => {});
      const ts = `2024-09-0${version}T12:00:00.000Z`;
      await new Promise<void>((resolve, reject) =>
        client.publish('devices/ACME-0001/readings', JSON.stringify({ sensor: 'temp', ts, value: 21.5 }), { qos: 1 }, (error) => {
          // PUBACK: kill the server at once, before it can do anything more.
          first.child.kill('SIGKILL');
          if (error) reject(error);
          else resolve();
        }),
      );
      await first.exited;
      client.end(true);

      const second = serve(await freePort());
      const [, url] = await second.waitFor(LISTENING, STARTUP_MS);
      try {
        const auth = { headers: { authorization: `Bearer ${ACME.apiKey}` } };
        const sensors = (await (await fetch(`${url}/v1/sensors?limit=100`, auth)).json()) as { data: { id: string; key: string }[] };
        const temp = sensors.data.find((s) => s.key === 'temp')!;
        const stored = (await (await fetch(`${url}/v1/sensors/${temp.id}/readings?from=2024-01-01T00:00:00Z`, auth)).json()) as {
          data: { ts: string; value: number }[];
        };
        expect(stored.data.find((r) => r.ts === ts)?.value).toBe(21.5);
      } finally {
        second.child.kill('SIGTERM');
        await second.exited;
      }
    },
    300_000,
  );
});
