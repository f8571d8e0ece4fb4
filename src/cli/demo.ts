import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { loadConfig } from '../config/config.js';
import { startServer } from '../server/server.js';
import { print } from './io.js';

/**
 * `sensorcloud demo`: a server with a demo organization (applied idempotently, like any
 * provisioning file), alarm thresholds and a webhook to a sink in this process, then simulated
 * sensors streaming readings over MQTT (the built-in broker) or HTTP until stopped: diurnal curves
 * with noise, and now and then a fridge excursion that raises an alarm. The credentials are fixed
 * and printed: a demo, on 127.0.0.1 unless HOST says otherwise.
 */

const DEMO = {
  user: { email: 'demo@sensorcloud.test', password: 'Demo-pass-2024' },
  apiKey: 'sk_live_demo00000000000000000000000000',
};

interface SimulatedSensor {
  key: string;
  kind: string;
  unit: string;
  /** Mean, daily swing (half of it either side), noise (standard deviation). */
  mean: number;
  swing: number;
  noise: number;
  /** Alarm range. */
  min: number;
  max: number;
  /** Every this many ticks (the first after a few), the value leaves its range for a while. */
  excursionEvery?: number;
}

const DEVICES: { serial: string; name: string; location: string; token: string; sensors: SimulatedSensor[] }[] = [
  {
    serial: 'DEMO-FRIDGE-1',
    name: 'Vaccine fridge',
    location: 'pharmacy',
    token: 'sc_dev_demofridge1000000000000000000',
    sensors: [{ key: 'temp', kind: 'temperature', unit: '°C', mean: 5, swing: 1.5, noise: 0.15, min: 2, max: 8, excursionEvery: 300 }],
  },
  {
    serial: 'DEMO-FREEZER-1',
    name: 'Freezer',
    location: 'pharmacy',
    token: 'sc_dev_demofreezer100000000000000000',
    sensors: [{ key: 'temp', kind: 'temperature', unit: '°C', mean: -20, swing: 2, noise: 0.3, min: -30, max: -15 }],
  },
  {
    serial: 'DEMO-LAB-1',
    name: 'Lab climate',
    location: 'lab',
    token: 'sc_dev_demolab10000000000000000000000',
    sensors: [
      { key: 'temp', kind: 'temperature', unit: '°C', mean: 21, swing: 3, noise: 0.2, min: 15, max: 28 },
      { key: 'hum', kind: 'humidity', unit: '%', mean: 45, swing: 12, noise: 1, min: 20, max: 70 },
    ],
  },
];

/** Ticks an excursion lasts, and the tick of the first one. */
const EXCURSION_TICKS = 8;
const FIRST_EXCURSION = 5;

function provisioningYaml(): string {
  const devices = DEVICES.map(
    (d) => `      - serial: ${d.serial}
        name: ${d.name}
        location: ${d.location}
        token: "${d.token}"
        sensors:
${d.sensors.map((s) => `          - { key: ${s.key}, kind: ${s.kind}, unit: "${s.unit}" }`).join('\n')}`,
  ).join('\n');
  return `organizations:
  - slug: demo
    name: Demo Labs
    users:
      - { email: ${DEMO.user.email}, password: "${DEMO.user.password}", role: admin }
    api_keys:
      - { name: demo, key: "${DEMO.apiKey}", scopes: [readings:read, devices:read, alarms:read, alarms:write, webhooks:read, webhooks:write], created_by: ${DEMO.user.email} }
    locations:
      - { slug: pharmacy, name: Pharmacy }
      - { slug: lab, name: Lab }
    devices:
${devices}
`;
}

/** A value of a sensor at `time`: the daily curve (coldest at dawn), noise, and the excursion if one is on. */
function simulate(sensor: SimulatedSensor, time: number, tick: number): number {
  const hours = (time / 3_600_000) % 24;
  const noise = sensor.noise * Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
  let value = sensor.mean + (sensor.swing / 2) * Math.sin((2 * Math.PI * (hours - 10)) / 24) + noise;
  const every = sensor.excursionEvery;
  if (every !== undefined && tick >= FIRST_EXCURSION && (tick - FIRST_EXCURSION) % every < EXCURSION_TICKS)
    value = sensor.max + 3 + Math.random();
  return Math.round(value * 100) / 100;
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The webhook receiver: counts events by type and tells the live line about alarms. */
async function startSink(onEvent: (type: string, data: Record<string, unknown>) => void): Promise<{ url: string; close(): void }> {
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      try {
        const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { type: string; data: Record<string, unknown> };
        onEvent(event.type, event.data);
      } catch {
        // not an event
      }
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/sensorcloud-events`, close: () => server.close() };
}

export async function demoCommand(options: { transport: 'mqtt' | 'http'; interval: string }): Promise<void> {
  const intervalMs = Math.max(100, Number(options.interval) || 1000);
  const host = process.env.HOST || '127.0.0.1';
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // The live line, not every request, unless asked.
    LOG_LEVEL: process.env.LOG_LEVEL || 'warn',
    // The webhook sink is on this machine.
    WEBHOOK_ALLOW_PRIVATE: process.env.WEBHOOK_ALLOW_PRIVATE || 'true',
    ...(options.transport === 'mqtt' && !process.env.MQTT_PORT && { MQTT_PORT: String(await freePort(host)) }),
  };
  const dataDir = path.resolve(process.env.DATA_DIR || 'data');
  await fs.mkdir(dataDir, { recursive: true });
  const provisionFile = path.join(dataDir, 'demo-provisioning.yaml');
  await fs.writeFile(provisionFile, provisioningYaml());
  const config = loadConfig(env, { provisionFile });
  const server = await startServer(config);
  const api = async (method: string, pathname: string, body?: unknown) => {
    const response = await fetch(new URL(pathname, server.url), {
      method,
      headers: { authorization: `Bearer ${DEMO.apiKey}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    if (!response.ok) throw new Error(`${method} ${pathname}: ${response.status} ${await response.text()}`);
    return (await response.json()) as { data: Record<string, unknown>[] };
  };

  const counts = { sent: 0, events: 0, alarms: 0 };
  const sink = await startSink((type, data) => {
    counts.events += 1;
    if (type === 'alarm.triggered') {
      counts.alarms += 1;
      print(`\nalarm.triggered: ${String(data.kind ?? 'alarm')} on sensor ${String(data.sensor_id)} (webhook received)`);
    }
  });

  // Thresholds on every sensor (delay 0: the demo's excursions raise an alarm at once), and the webhook to the sink.
  const sensors = (await api('GET', '/v1/sensors?limit=100')).data as { id: string; key: string; device_id: string }[];
  const devices = (await api('GET', '/v1/devices?limit=100')).data as { id: string; serial: string }[];
  const thresholds = (await api('GET', '/v1/alarm-thresholds?limit=1000')).data as { sensor_id: string }[];
  for (const device of DEVICES) {
    const deviceId = devices.find((d) => d.serial === device.serial)!.id;
    for (const simulated of device.sensors) {
      const sensor = sensors.find((s) => s.device_id === deviceId && s.key === simulated.key)!;
      if (!thresholds.some((t) => t.sensor_id === sensor.id))
        await api('POST', '/v1/alarm-thresholds', { sensor_id: sensor.id, min: simulated.min, max: simulated.max, delay_seconds: 0 });
    }
  }
  const webhooks = (await api('GET', '/v1/webhooks?limit=100')).data as { id: string }[];
  const eventTypes = ['alarm.triggered', 'alarm.resolved', 'sensor.offline'];
  if (webhooks[0]) await api('PATCH', `/v1/webhooks/${webhooks[0].id}`, { url: sink.url, event_types: eventTypes, enabled: true });
  else await api('POST', '/v1/webhooks', { url: sink.url, event_types: eventTypes, description: 'sensorcloud demo sink' });

  const mqttPort = config.env.MQTT_PORT;
  const clients = new Map<string, MqttClient>();
  if (options.transport === 'mqtt')
    for (const device of DEVICES)
      clients.set(
        device.serial,
        await mqtt.connectAsync(`mqtt://${host.includes(':') ? `[${host}]` : host}:${mqttPort}`, {
          protocolVersion: 5,
          username: device.serial,
          password: device.token,
        }),
      );

  print(`sensorcloud demo — ${server.url}
  console     ${server.url}/console   sign in as ${DEMO.user.email} / ${DEMO.user.password}
  API         curl -H 'authorization: Bearer ${DEMO.apiKey}' ${server.url}/v1/sensors
  API docs    ${server.url}/docs
  ${options.transport === 'mqtt' ? `MQTT        mqtt://${host}:${mqttPort}  username = serial, password = device token` : `ingest      POST ${server.url}/v1/ingest with a device token`}
${DEVICES.map((d) => `    ${d.serial.padEnd(15)} ${d.token}`).join('\n')}
  webhooks    delivered to ${sink.url}
streaming readings every ${intervalMs} ms over ${options.transport.toUpperCase()}; Ctrl-C stops`);

  let tick = 0;
  const send = async () => {
    const now = Date.now();
    const ts = new Date(now).toISOString();
    await Promise.all(
      DEVICES.map(async (device) => {
        const readings = device.sensors.map((s) => ({ sensor: s.key, ts, value: simulate(s, now, tick) }));
        const client = clients.get(device.serial);
        if (client) await client.publishAsync(`devices/${device.serial}/readings`, JSON.stringify(readings), { qos: 1 });
        else {
          const response = await fetch(new URL('/v1/ingest', server.url), {
            method: 'POST',
            headers: { authorization: `Bearer ${device.token}`, 'content-type': 'application/json' },
            body: JSON.stringify(readings),
          });
          await response.arrayBuffer();
        }
        counts.sent += readings.length;
      }),
    );
    const fridge = simulate({ ...DEVICES[0]!.sensors[0]!, noise: 0 }, now, tick);
    const line = `tick ${tick}: ${counts.sent} readings sent, fridge ≈ ${fridge.toFixed(1)} °C, ${counts.events} webhook events, ${counts.alarms} alarms`;
    if (process.stdout.isTTY) process.stdout.write(`\r${line}   `);
    else if (tick % 5 === 0) print(line);
    tick += 1;
  };
  const timer = setInterval(() => {
    send().catch((error: unknown) => print(`\nsending failed: ${String(error)}`));
  }, intervalMs);

  await new Promise<void>((resolve) => {
    const stop = () => {
      clearInterval(timer);
      print('\nstopping');
      void Promise.all([...clients.values()].map((client) => client.endAsync()))
        .then(() => server.close())
        .finally(() => {
          sink.close();
          resolve();
        });
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
