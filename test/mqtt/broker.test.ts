import net from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { freePort, serverBackends, startTestServer, type TestServer, useTestServer } from '../support/server.js';
import { ACME, BETA, PROVISIONING } from './fixtures.js';

/**
 * The built-in broker (SPEC §8) with the real MQTT.js client, MQTT 5 and 3.1.1, over TCP and
 * WebSocket: what a device publishes is queryable through /v1; a wrong token is refused at
 * CONNECT; another device's topic and invalid payloads store nothing and leave the broker
 * serving; rotating a device's token disconnects it.
 */

const { serial: SERIAL, token: TOKEN, apiKey: API_KEY } = ACME;

interface Ports {
  tcp: number;
  ws: number;
}

async function startWithBroker(backend: (typeof serverBackends)[number]): Promise<TestServer & { ports: Ports }> {
  const ports = { tcp: await freePort(), ws: await freePort() };
  const storage = await backend.prepare();
  const server = await startTestServer({
    ...storage.options,
    provisioning: PROVISIONING,
    env: { MQTT_PORT: String(ports.tcp), MQTT_WS_PORT: String(ports.ws), OAUTH_RATE_LIMIT_IP: '0' },
  });
  const stopServer = server.stop;
  return Object.assign(server, {
    ports,
    stop: async () => {
      await stopServer();
      await storage.cleanup();
    },
  });
}

describe.each(serverBackends)('built-in MQTT broker on $name', (backend) => {
  const server = useTestServer(() => startWithBroker(backend)) as TestServer & { ports: Ports };
  const clients: MqttClient[] = [];

  async function connect(version: 4 | 5, options: IClientOptions = {}, transport: 'mqtt' | 'ws' = 'mqtt'): Promise<MqttClient> {
    const { ports } = server;
    const url = transport === 'ws' ? `ws://127.0.0.1:${ports.ws}` : `mqtt://127.0.0.1:${ports.tcp}`;
    const client = await mqtt.connectAsync(url, {
      protocolVersion: version,
      username: SERIAL,
      password: TOKEN,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      ...options,
    });
    clients.push(client);
    return client;
  }

  async function sensorId(key: string): Promise<string> {
    const response = await server.fetch(`/v1/sensors?limit=1000`, { headers: { authorization: `Bearer ${API_KEY}` } });
    const body = (await response.json()) as { data: { id: string; key: string; device_id: string }[] };
    const devices = (await (await server.fetch('/v1/devices', { headers: { authorization: `Bearer ${API_KEY}` } })).json()) as {
      data: { id: string; serial: string }[];
    };
    const device = devices.data.find((d) => d.serial === SERIAL)!;
    return body.data.find((s) => s.key === key && s.device_id === device.id)!.id;
  }

  async function readings(key: string): Promise<{ ts: string; value: number }[]> {
    const id = await sensorId(key);
    const response = await server.fetch(`/v1/sensors/${id}/readings?from=2000-01-01T00:00:00Z&limit=1000`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { data: { ts: string; value: number }[] }).data;
  }

  const closed = (client: MqttClient) =>
    new Promise<void>((resolve) => (client.connected ? client.once('close', () => resolve()) : resolve()));

  it.each([5, 4] as const)('MQTT %s: a QoS 1 reading is acknowledged once stored, and queryable through /v1', async (version) => {
    const client = await connect(version);
    const ts = `2024-05-0${version}T10:00:00.000Z`;
    await client.publishAsync(`devices/${SERIAL}/readings`, JSON.stringify({ sensor: 'temp', ts, value: 4.5 }), { qos: 1 });
    // Answered means durable: the reading is there the moment PUBACK arrives.
    expect((await readings('temp')).find((r) => r.ts === ts)?.value).toBe(4.5);
    // QoS 0, an array and NDJSON are accepted as POST /v1/ingest accepts them.
    await client.publishAsync(`devices/${SERIAL}/readings`, JSON.stringify([{ sensor: 'hum', ts, value: 40 }]), { qos: 1 });
    await client.publishAsync(
      `devices/${SERIAL}/readings`,
      `{"sensor":"hum","ts":"${ts.replace('T10', 'T11')}","value":41}\n{"sensor":"hum","ts":"${ts.replace('T10', 'T12')}","value":42}\n`,
      { qos: 0 },
    );
    await expect.poll(async () => (await readings('hum')).filter((r) => r.ts.startsWith(ts.slice(0, 10))).length).toBe(3);
    await client.endAsync();
  });

  it('MQTT over WebSocket', async () => {
    const client = await connect(5, {}, 'ws');
    await client.publishAsync(`devices/${SERIAL}/readings`, JSON.stringify({ sensor: 'temp', ts: '2024-06-01T00:00:00Z', value: 7 }), {
      qos: 1,
    });
    expect((await readings('temp')).some((r) => r.ts === '2024-06-01T00:00:00.000Z')).toBe(true);
    await client.endAsync();
  });

  it('a wrong token is refused at CONNECT: MQTT 5 CONNACK 0x86, MQTT 3.1.1 return code 4', async () => {
    await expect(connect(5, { password: 'sc_dev_wrong' })).rejects.toMatchObject({ code: 0x86 });
    await expect(connect(4, { password: 'sc_dev_wrong' })).rejects.toMatchObject({ code: 4 });
    // Another device's serial with this token, and no password at all.
    await expect(connect(5, { username: BETA.serial })).rejects.toMatchObject({ code: 0x86 });
    await expect(connect(5, { password: undefined })).rejects.toMatchObject({ code: 0x86 });
  });

  it("another device's topic is refused and nothing is stored (MQTT 5: PUBACK 0x87; 3.1.1: the connection is closed)", async () => {
    const payload = JSON.stringify({ sensor: 'temp', ts: '2024-07-01T00:00:00Z', value: 99 });
    const v5 = await connect(5);
    await expect(v5.publishAsync(`devices/${BETA.serial}/readings`, payload, { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
    await v5.publishAsync(`devices/${BETA.serial}/readings`, payload, { qos: 0 });
    await expect(v5.publishAsync('anything/else', payload, { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
    expect(v5.connected).toBe(true);
    await v5.endAsync();

    const v4 = await connect(4);
    const gone = closed(v4);
    v4.publish(`devices/${BETA.serial}/readings`, payload, { qos: 1 });
    await gone;

    const { count } = (await server.db
      .selectFrom('readings')
      .select((eb) => eb.fn.countAll<string>().as('count'))
      .where('value', '=', 99)
      .executeTakeFirstOrThrow()) as { count: string };
    expect(Number(count)).toBe(0);
  });

  it('garbage payloads are neither stored nor crash the broker (MQTT 5: PUBACK 0x99; 3.1.1: acknowledged and dropped)', async () => {
    const topic = `devices/${SERIAL}/readings`;
    const v5 = await connect(5);
    for (const payload of [
      Buffer.from([0x99, 0xff, 0x00]),
      'not json',
      '{"readings": 5}',
      JSON.stringify({ sensor: 'nope', ts: '2024-08-01T00:00:00Z', value: 1 }),
      JSON.stringify({ sensor: 'temp', ts: 'yesterday', value: 1 }),
      '',
    ])
      await expect(v5.publishAsync(topic, payload, { qos: 1 })).rejects.toMatchObject({ code: 0x99 });
    const v4 = await connect(4);
    await v4.publishAsync(topic, Buffer.from([0x99, 0x99]), { qos: 1 });
    await v4.publishAsync(topic, '[{"sensor":"temp","ts":"2024-08-01T00:00:00Z","value":"x"}]', { qos: 1 });
    // Both still connected, and a good reading after them is stored.
    await v4.publishAsync(topic, JSON.stringify({ sensor: 'temp', ts: '2024-08-02T00:00:00Z', value: 3 }), { qos: 1 });
    await v5.publishAsync(topic, JSON.stringify({ sensor: 'temp', ts: '2024-08-03T00:00:00Z', value: 3 }), { qos: 1 });
    const august = (await readings('temp')).filter((r) => r.ts.startsWith('2024-08'));
    expect(august.map((r) => r.ts).sort()).toEqual(['2024-08-02T00:00:00.000Z', '2024-08-03T00:00:00.000Z']);
    await Promise.all([v4.endAsync(), v5.endAsync()]);
  });

  it('bytes that are not MQTT, or not a whole packet, close only their own connection', async () => {
    const garbage = [
      Buffer.from([0x99, 0x99, 0x99, 0x99]),
      Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f]),
      Buffer.from([0x10, 0x10, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x05, 0x02, 0x00, 0x3c, 0xff, 0xff, 0xff]),
      Buffer.concat([
        Buffer.from([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x05, 0x02, 0x00, 0x3c, 0x00, 0x00, 0x00]),
        Buffer.from([0x30, 0xff, 0x01]),
      ]),
    ];
    await Promise.all(
      garbage.map(
        (bytes) =>
          new Promise<void>((resolve) => {
            const socket = net.connect(server.ports.tcp, '127.0.0.1', () => socket.end(bytes));
            socket.on('error', () => resolve());
            socket.on('close', () => resolve());
            socket.resume();
          }),
      ),
    );
    const client = await connect(5);
    await client.publishAsync(`devices/${SERIAL}/readings`, JSON.stringify({ sensor: 'temp', ts: '2024-11-01T00:00:00Z', value: 2 }), {
      qos: 1,
    });
    await client.endAsync();
  });

  it('subscriptions are refused: nothing is ever delivered to devices', async () => {
    const v5 = await connect(5);
    await expect(v5.subscribeAsync(`devices/${SERIAL}/readings`)).rejects.toMatchObject({ packet: { granted: [0x87] } });
    const v4 = await connect(4);
    await expect(v4.subscribeAsync('#')).rejects.toMatchObject({ packet: { granted: [0x80] } });
    await Promise.all([v4.endAsync(), v5.endAsync()]);
  });

  it('/metrics counts connections, messages and refusals', async () => {
    const client = await connect(5);
    const text = await (await server.fetch('/metrics')).text();
    expect(text).toMatch(/^mqtt_connected_devices [1-9]/m);
    expect(text).toMatch(/^mqtt_messages_received_total [1-9]/m);
    expect(text).toMatch(/^mqtt_messages_refused_total\{reason="invalid_payload"\} [1-9]/m);
    expect(text).toMatch(/^mqtt_connections_refused_total\{reason="bad_credentials"\} [1-9]/m);
    expect(text).toMatch(/^mqtt_ingest_duration_seconds_count [1-9]/m);
    await client.endAsync();
  });

  it("rotating a device's token disconnects the device, whichever protocol it speaks", async () => {
    const beta = { username: BETA.serial, password: BETA.token };
    const v5 = await connect(5, beta);
    const v4 = await connect(4, beta);
    const disconnect = new Promise<number | undefined>((resolve) => v5.once('disconnect', (packet) => resolve(packet.reasonCode)));
    const gone = Promise.all([closed(v4), closed(v5)]);
    const auth = { authorization: `Bearer ${BETA.apiKey}` };
    const devices = (await (await server.fetch('/v1/devices', { headers: auth })).json()) as { data: { id: string }[] };
    const rotated = await server.fetch(`/v1/devices/${devices.data[0]!.id}/token`, { method: 'POST', headers: auth });
    expect(rotated.status).toBe(200);
    expect(await disconnect).toBe(0x87);
    await gone;
    await expect(connect(5, beta)).rejects.toMatchObject({ code: 0x86 });
  });
});

describe('built-in MQTT broker shutdown', () => {
  it('a server stopping tells its MQTT 5 devices why they are disconnected (DISCONNECT 0x8B, server shutting down)', async () => {
    const server = await startWithBroker(serverBackends[0]!);
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.ports.tcp}`, {
      protocolVersion: 5,
      username: ACME.serial,
      password: ACME.token,
      reconnectPeriod: 0,
    });
    const disconnect = new Promise<number | undefined>((resolve) => client.once('disconnect', (packet) => resolve(packet.reasonCode)));
    await client.publishAsync(`devices/${ACME.serial}/readings`, JSON.stringify({ sensor: 'temp', ts: '2024-10-01T00:00:00Z', value: 1 }), {
      qos: 1,
    });
    await server.stop();
    expect(await disconnect).toBe(0x8b);
    client.end(true);
  });
});
