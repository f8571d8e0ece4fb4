import net from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { sql } from 'kysely';
import { INVALIDATION_CHANNEL } from '../../src/storage/invalidations.js';
import { describe, expect, it } from 'vitest';
import { freePort, serverBackends, startTestServer, type TestServer, useTestServer } from '../support/server.js';
import { ACME, BETA, PROVISIONING } from './fixtures.js';

/**
 * The built-in broker (SPEC §8) with the real MQTT.js client, MQTT 5 and 3.1.1, over TCP and
 * WebSocket: what a device publishes is queryable through /v1; a wrong token is refused at
 * CONNECT; another device's topic and invalid payloads store nothing and leave the broker
 * serving; rotating a device's token disconnects it. Raw sockets for what a client library
 * would not send: packets before CONNACK, packets larger than announced, idle connections.
 */

const { serial: SERIAL, token: TOKEN, apiKey: API_KEY } = ACME;

interface Ports {
  tcp: number;
  ws: number;
}

/** INGEST_MAX_BYTES of these servers; the largest packet is this plus 8 KiB of headers. */
const MAX_BYTES = 64 * 1024;
const MAX_PACKET_SIZE = MAX_BYTES + 8 * 1024;

/** A TCP connection that speaks MQTT packet by packet (mqtt-packet, as the server does). */
interface RawConnection {
  socket: net.Socket;
  /** The next packet the server sends (rejects if the connection closes first). */
  next(): Promise<Packet>;
  /** Resolves when the connection is closed. */
  closed: Promise<void>;
  send(...packets: object[]): void;
}

function rawConnection(port: number, version: 4 | 5, options: { allowHalfOpen?: boolean } = {}): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: options.allowHalfOpen ?? false });
    const parser = mqttPacket.parser({ protocolVersion: version });
    const packets: Packet[] = [];
    const waiting: { resolve: (p: Packet) => void; reject: (e: Error) => void }[] = [];
    let isClosed = false;
    parser.on('packet', (packet: Packet) => {
      const waiter = waiting.shift();
      if (waiter) waiter.resolve(packet);
      else packets.push(packet);
    });
    socket.on('data', (chunk) => parser.parse(chunk));
    socket.on('error', () => {});
    const closed = new Promise<void>((done) =>
      socket.once('close', () => {
        isClosed = true;
        for (const waiter of waiting.splice(0)) waiter.reject(new Error('connection closed'));
        done();
      }),
    );
    socket.once('connect', () =>
      resolve({
        socket,
        closed,
        next: () => {
          const packet = packets.shift();
          if (packet) return Promise.resolve(packet);
          if (isClosed) return Promise.reject(new Error('connection closed'));
          return new Promise((res, rej) => waiting.push({ resolve: res, reject: rej }));
        },
        send: (...list) => socket.write(Buffer.concat(list.map((p) => mqttPacket.generate(p as Packet, { protocolVersion: version })))),
      }),
    );
    socket.once('error', reject);
  });
}

const connectPacket = (version: 4 | 5, password = TOKEN) => ({
  cmd: 'connect',
  protocolId: 'MQTT',
  protocolVersion: version,
  clean: true,
  clientId: `raw-${version}-${Math.random().toString(36).slice(2)}`,
  keepalive: 60,
  username: SERIAL,
  password: Buffer.from(password),
});

/** Resolves true if `promise` settles within `ms`. */
const within = (promise: Promise<unknown>, ms: number) =>
  Promise.race([promise.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);

async function startWithBroker(backend: (typeof serverBackends)[number]): Promise<TestServer & { ports: Ports }> {
  const ports = { tcp: await freePort(), ws: await freePort() };
  const storage = await backend.prepare();
  const server = await startTestServer({
    ...storage.options,
    provisioning: PROVISIONING,
    env: { MQTT_PORT: String(ports.tcp), MQTT_WS_PORT: String(ports.ws), OAUTH_RATE_LIMIT_IP: '0', INGEST_MAX_BYTES: String(MAX_BYTES) },
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
    // The reasons the help names are the ones counted (docs/mqtt.md).
    expect(text).toMatch(/^# HELP mqtt_messages_refused_total .*\(invalid_payload, not_authorized[:)]/m);
    expect(text).not.toContain('unknown_device');
    await client.endAsync();
  });

  it.each([5, 4] as const)(
    'MQTT %s: packets sent right behind CONNECT, before CONNACK, are handled in order once it is accepted',
    async (version) => {
      const raw = await rawConnection(server.ports.tcp, version);
      const ts = `2024-12-0${version}T00:00:00.000Z`;
      const publish = (messageId: number, value: number) => ({
        cmd: 'publish',
        topic: `devices/${SERIAL}/readings`,
        qos: 1,
        messageId,
        retain: false,
        dup: false,
        payload: Buffer.from(JSON.stringify({ sensor: 'temp', ts: ts.replace('T00', `T0${value}`), value })),
      });
      // One write: CONNECT and two PUBLISHes arrive in one segment, while the credentials are being checked.
      raw.send(connectPacket(version), publish(1, 1), publish(2, 2), { cmd: 'pingreq' });
      expect(await raw.next()).toMatchObject({ cmd: 'connack', ...(version === 5 ? { reasonCode: 0 } : { returnCode: 0 }) });
      // PINGRESP goes out at once, each PUBACK once its reading is stored: in the order of the PUBLISHes.
      const answers = [await raw.next(), await raw.next(), await raw.next()];
      expect(answers.filter((p) => p.cmd === 'puback').map((p) => ('messageId' in p ? p.messageId : undefined))).toEqual([1, 2]);
      expect(answers.filter((p) => p.cmd === 'pingresp')).toHaveLength(1);
      const stored = (await readings('temp')).filter((r) => r.ts.startsWith(ts.slice(0, 10)));
      expect(stored.map((r) => r.value).sort()).toEqual([1, 2]);
      raw.socket.destroy();
    },
  );

  it('MQTT 5: packets behind a CONNECT that is refused are dropped with the connection', async () => {
    const raw = await rawConnection(server.ports.tcp, 5);
    raw.send(connectPacket(5, 'sc_dev_wrong'), {
      cmd: 'publish',
      topic: `devices/${SERIAL}/readings`,
      qos: 1,
      messageId: 1,
      payload: Buffer.from(JSON.stringify({ sensor: 'temp', ts: '2024-12-09T00:00:00Z', value: 9 })),
    });
    expect(await raw.next()).toMatchObject({ cmd: 'connack', reasonCode: 0x86 });
    await raw.closed;
    expect((await readings('temp')).some((r) => r.ts === '2024-12-09T00:00:00.000Z')).toBe(false);
  });

  it.each([5, 4] as const)('MQTT %s: a CONNECT announcing a huge packet is cut off at once, not buffered', async (version) => {
    const raw = await rawConnection(server.ports.tcp, version);
    // Remaining length 268 435 455 (the most MQTT can say), then the start of a CONNECT: the
    // protocol level is readable, the rest never comes.
    raw.socket.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, version, 0x02, 0x00, 0x3c]));
    expect(await within(raw.closed, 2_000)).toBe(true);
  });

  it('MQTT 5: CONNACK announces the Maximum Packet Size; a larger PUBLISH is DISCONNECT 0x95 from its header', async () => {
    const raw = await rawConnection(server.ports.tcp, 5);
    raw.send(connectPacket(5));
    expect(await raw.next()).toMatchObject({ cmd: 'connack', reasonCode: 0, properties: { maximumPacketSize: MAX_PACKET_SIZE } });
    // A QoS 1 PUBLISH whose header announces one byte more than that (a type byte, 3 bytes of
    // remaining length, the rest), and only the start of its body.
    const remaining = MAX_PACKET_SIZE + 1 - 4;
    expect(remaining).toBeGreaterThanOrEqual(128 * 128);
    expect(remaining).toBeLessThan(128 * 128 * 128);
    const length = [(remaining & 0x7f) | 0x80, ((remaining >> 7) & 0x7f) | 0x80, remaining >> 14];
    raw.socket.write(Buffer.from([0x32, ...length, 0x00, 0x01, 0x64]));
    expect(await raw.next()).toMatchObject({ cmd: 'disconnect', reasonCode: 0x95 });
    expect(await within(raw.closed, 2_000)).toBe(true);
  });

  it('a payload over INGEST_MAX_BYTES within the packet size is refused as invalid (MQTT 5: PUBACK 0x99); a larger packet closes 3.1.1', async () => {
    const topic = `devices/${SERIAL}/readings`;
    const v5 = await connect(5);
    await expect(v5.publishAsync(topic, Buffer.alloc(MAX_BYTES + 1, 0x20), { qos: 1 })).rejects.toMatchObject({ code: 0x99 });
    expect(v5.connected).toBe(true);
    await v5.endAsync();

    const v4 = await connect(4);
    const gone = closed(v4);
    v4.publish(topic, Buffer.alloc(MAX_PACKET_SIZE, 0x20), { qos: 1 });
    expect(await within(gone, 2_000)).toBe(true);
    // The broker goes on serving.
    const again = await connect(4);
    await again.publishAsync(topic, JSON.stringify({ sensor: 'temp', ts: '2024-12-10T00:00:00Z', value: 10 }), { qos: 1 });
    await again.endAsync();
  });

  it('after missed invalidations every connected device is checked again (from its token digest): one whose token changed meanwhile is disconnected', async () => {
    const beta = { username: BETA.serial, password: BETA.token };
    const v5 = await connect(5, beta);
    const v4 = await connect(4, beta);
    const acme = await connect(5);
    const disconnect = new Promise<number | undefined>((resolve) => v5.once('disconnect', (packet) => resolve(packet.reasonCode)));
    const gone = Promise.all([closed(v4), closed(v5)]);
    const device = await server.db
      .selectFrom('devices')
      .select(['id', 'token_hash'])
      .where('serial', '=', BETA.serial)
      .executeTakeFirstOrThrow();
    // The token changes without its notification reaching this node, then the listener reconnects.
    await server.db.updateTable('devices').set({ token_hash: 'changed-elsewhere' }).where('id', '=', device.id).execute();
    try {
      await sql`select pg_notify(${INVALIDATION_CHANNEL}, ${JSON.stringify({ kind: 'all' })})`.execute(server.db);
      expect(await disconnect).toBe(0x87);
      await gone;
      // Acme's token still stands: it stays connected.
      await acme.publishAsync(`devices/${SERIAL}/readings`, JSON.stringify({ sensor: 'temp', ts: '2024-12-11T00:00:00Z', value: 1 }), {
        qos: 1,
      });
      expect(acme.connected).toBe(true);
    } finally {
      await server.db.updateTable('devices').set({ token_hash: device.token_hash }).where('id', '=', device.id).execute();
    }
    await acme.endAsync();
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

  it('connections that never send CONNECT, or never close their side, do not hold the shutdown up', async () => {
    const server = await startWithBroker(serverBackends[0]!);
    // Connected, silent: the broker would wait 30 s for its CONNECT.
    const idle = await rawConnection(server.ports.tcp, 5);
    // An MQTT 5 device that never closes its side of the connection.
    const halfOpen = await rawConnection(server.ports.tcp, 5, { allowHalfOpen: true });
    halfOpen.send(connectPacket(5));
    expect(await halfOpen.next()).toMatchObject({ cmd: 'connack', reasonCode: 0 });
    const started = Date.now();
    await server.stop();
    // Without tracking them it waited for the 30 s CONNECT timeout, and for ever on the half-open one.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await within(idle.closed, 1_000)).toBe(true);
    halfOpen.socket.destroy();
  });
});
