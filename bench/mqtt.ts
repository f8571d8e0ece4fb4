/**
 * The scenario of issue #17: MQTT QoS 1 ingest of single-reading messages from 100 devices on the
 * built-in broker (durable readings per second, PUBACK only after commit), against a bare aedes
 * broker acknowledging the same messages with no storage at all.
 */
import { BENCH, mqttDevice } from './lib/fixtures.js';
import type { LoadResult } from './lib/load-types.js';
import { TSX, runNode } from './lib/proc.js';
import type { MqttLoadSpec } from './children/mqtt-load.js';
import type { Context, Prepared, Scenario } from './scenarios.js';

/** QoS 1 messages each device keeps unacknowledged (a device sending as fast as its broker acknowledges). */
const INFLIGHT = 10;
const DEVICES = Array.from({ length: BENCH.mqtt.devices }, (_, i) => mqttDevice(i));

const HOUR = 3_600_000;
/** Each run writes readings of its own: ten minutes of timestamps per run (one millisecond apart per device), in recent partitions. */
let window = 0;

function mqttLoad(url: string): Prepared {
  return async (duration) => {
    const spec: MqttLoadSpec = {
      url,
      devices: DEVICES,
      inflight: INFLIGHT,
      duration,
      startMs: Math.floor(Date.now() / HOUR) * HOUR - 120 * HOUR + window++ * 600_000,
      sensor: BENCH.mqtt.sensor,
    };
    const out = await runNode([...TSX, 'bench/children/mqtt-load.ts', JSON.stringify(spec)]);
    return JSON.parse(out.trim().split('\n').pop() ?? '') as LoadResult;
  };
}

export const mqttScenario: Scenario = {
  id: 'mqtt',
  title: `12. MQTT QoS 1 ingest, single readings from ${BENCH.mqtt.devices} devices`,
  kind: 'throughput',
  unit: 'readings/s',
  multiplier: () => 1,
  connections: () => BENCH.mqtt.devices,
  target: '≥ 20,000 readings/s durable, ≥ 50% of bare aedes, p99 ≤ 250 ms',
  check: (sc, ref) => sc.rate >= 20_000 && sc.p99 <= 250 && (ref ? sc.rate >= 0.5 * ref.rate : true),
  sensorcloud: async (ctx: Context) => mqttLoad(ctx.mqttUrl),
  reference: {
    name: 'bare aedes',
    serverPid: (ctx) => ctx.refs.aedesPid,
    prepare: async (ctx) => mqttLoad(ctx.refs.aedesMqttUrl),
  },
};
