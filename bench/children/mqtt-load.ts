/**
 * Load child of the MQTT scenario: DEVICES devices connect (MQTT 3.1.1, which both the built-in
 * broker and bare aedes speak) and each keeps INFLIGHT QoS 1 single-reading messages
 * unacknowledged for DURATION seconds. Latency is publish → PUBACK; the built-in broker sends
 * PUBACK only after the reading is committed, so it bounds publish-to-queryable from above.
 * Prints a LoadResult as JSON on its last line.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { directLoadResult } from '../lib/stats.js';

export interface MqttLoadSpec {
  url: string;
  devices: { username: string; password: string }[];
  inflight: number;
  duration: number;
  /** Epoch ms of the first reading; each device's readings follow 1 ms apart. */
  startMs: number;
  sensor: string;
}

const spec = JSON.parse(process.argv[2]!) as MqttLoadSpec;
const clients: MqttClient[] = await Promise.all(
  spec.devices.map((device) => mqtt.connectAsync(spec.url, { protocolVersion: 4, ...device, reconnectPeriod: 0, connectTimeout: 30_000 })),
);
const latencies: number[] = [];
let failures = 0;
let running = true;
const cpu = process.cpuUsage();
const started = performance.now();

function publish(client: MqttClient, topic: string, sequence: { next: number }): void {
  if (!running) return;
  const ts = new Date(spec.startMs + sequence.next++).toISOString();
  const sent = performance.now();
  client.publish(topic, `{"sensor":"${spec.sensor}","ts":"${ts}","value":${(sequence.next % 400) / 10}}`, { qos: 1 }, (error) => {
    if (!running) return;
    if (error) failures++;
    else latencies.push(performance.now() - sent);
    publish(client, topic, sequence);
  });
}

for (const [i, client] of clients.entries()) {
  const sequence = { next: 0 };
  for (let k = 0; k < spec.inflight; k++) publish(client, `devices/${spec.devices[i]!.username}/readings`, sequence);
}
await new Promise((resolve) => setTimeout(resolve, spec.duration * 1000));
running = false;
const elapsed = (performance.now() - started) / 1000;
const used = process.cpuUsage(cpu);
await Promise.all(clients.map((client) => client.endAsync(true)));
process.stdout.write(`${JSON.stringify(directLoadResult(latencies, failures, elapsed, used))}\n`);
