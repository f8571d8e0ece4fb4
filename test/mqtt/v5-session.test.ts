import { type AddressInfo, type Server, createServer } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import type { Packet } from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/principal.js';
import { type DeviceIngest, type MessageRefusal, readingsTopic } from '../../src/mqtt/device-ingest.js';
import { V5Session } from '../../src/mqtt/v5-session.js';

/**
 * An MQTT 5 session against a stand-in DeviceIngest whose store answers as each test scripts it
 * (the real MQTT.js client on the other side): a store that fails for several pipelined messages
 * of one connection, in whatever order, never leaves a rejection unhandled (Node would end the
 * process), and the answers keep the order of the PUBLISHes.
 */

const SERIAL = 'STUB-0001';
const TOPIC = readingsTopic(SERIAL);
const principal: Principal = {
  kind: 'device',
  organizationId: 'org',
  userId: null,
  clientId: null,
  scopes: new Set(),
  credentialHash: 'hash',
  revocationGroup: 'device:dev',
  expiresAt: null,
  deviceId: 'dev',
  deviceSerial: SERIAL,
};

/** How each store call answers, in order of the calls: a refusal (or none) after `ms`, or a failure after `ms`. */
type Script = { ms: number; fails?: true };

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function stubIngest(script: Script[], authenticateMs = 0): DeviceIngest {
  let call = 0;
  const stub = {
    maxPacketSize: 64 * 1024,
    async authenticate() {
      await delay(authenticateMs);
      return { principal };
    },
    mayPublish: (_own: unknown, topic: string) => topic === TOPIC,
    store(): Promise<MessageRefusal | undefined> {
      const step = script[call++] ?? { ms: 0 };
      // A failure that is already rejected when store() returns: the case an unhandled rejection comes from.
      if (step.fails && step.ms === 0) return Promise.reject(new Error('write failed'));
      return delay(step.ms).then(() => {
        if (step.fails) throw new Error('write failed');
        return undefined;
      });
    },
  };
  return stub as unknown as DeviceIngest;
}

describe('MQTT 5 session', () => {
  let server: Server | undefined;
  let client: MqttClient | undefined;
  const unhandled: unknown[] = [];
  /** Message ids of the PUBLISHes in the order they were sent: a PUBACK is named by its PUBLISH's place (1, 2, …). */
  const sent: (number | undefined)[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  afterEach(async () => {
    process.off('unhandledRejection', onUnhandled);
    client?.end(true);
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server = undefined;
    unhandled.length = 0;
  });

  async function start(ingest: DeviceIngest): Promise<{ received: Packet[]; closed: Promise<void> }> {
    process.on('unhandledRejection', onUnhandled);
    server = createServer(
      (socket) =>
        new V5Session(socket, {
          ingest,
          ip: '127.0.0.1',
          log: { info: () => {}, warn: () => {} },
          connected: () => {},
          closed: () => {},
        }),
    );
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      protocolVersion: 5,
      username: SERIAL,
      password: 'sc_dev_stub',
      reconnectPeriod: 0,
    });
    client.on('error', () => {});
    const received: Packet[] = [];
    client.on('packetreceive', (packet) => received.push(packet));
    sent.length = 0;
    client.on('packetsend', (packet) => {
      if (packet.cmd === 'publish') sent.push(packet.messageId);
    });
    const closed = new Promise<void>((resolve) => client!.once('close', () => resolve()));
    return { received, closed };
  }

  const answers = (received: Packet[]) =>
    received.map((p) =>
      p.cmd === 'puback' ? `puback ${sent.indexOf(p.messageId) + 1} ${p.reasonCode}` : `${p.cmd} ${'reasonCode' in p ? p.reasonCode : ''}`,
    );

  it('two pipelined messages whose store fails, the later one first: no unhandled rejection, DISCONNECT 0x89, nothing acknowledged', async () => {
    const { received, closed } = await start(
      stubIngest([
        { ms: 50, fails: true },
        { ms: 0, fails: true },
      ]),
    );
    client!.publish(TOPIC, 'a', { qos: 1 });
    client!.publish(TOPIC, 'b', { qos: 1 });
    await closed;
    await delay(50);
    expect(unhandled).toEqual([]);
    expect(answers(received)).toEqual(['disconnect 137']);
  });

  it('the first message stored, the second failing before it: PUBACK of the first, then DISCONNECT 0x89', async () => {
    const { received, closed } = await start(stubIngest([{ ms: 50 }, { ms: 0, fails: true }]));
    client!.publish(TOPIC, 'a', { qos: 1 });
    client!.publish(TOPIC, 'b', { qos: 1 });
    await closed;
    await delay(50);
    expect(unhandled).toEqual([]);
    expect(answers(received)).toEqual(['puback 1 0', 'disconnect 137']);
  });

  it('PUBACKs keep the order of the PUBLISHes whichever store finishes first', async () => {
    const { received } = await start(stubIngest([{ ms: 60 }, { ms: 0 }, { ms: 30 }]));
    await Promise.all(['a', 'b', 'c'].map((payload) => client!.publishAsync(TOPIC, payload, { qos: 1 })));
    expect(answers(received)).toEqual(['puback 1 0', 'puback 2 0', 'puback 3 0']);
  });
});
