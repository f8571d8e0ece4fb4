/**
 * The scenarios of issue #13: what reacting to readings costs. Alarm evaluation on the volume
 * path (ingest with a threshold on every sensor, against the same ingest without), and webhook
 * delivery (sustained deliveries per second, and event-to-delivery latency on an idle server) to
 * a receiver in this process.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BENCH } from './lib/fixtures.js';
import type { LatencyStats, LoadResult } from './lib/load-types.js';
import { type Context, type Prepared, type Scenario, ingestRunner } from './scenarios.js';

const HOUR = 3_600_000;

async function api(ctx: Context, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(ctx.url + path, {
    method,
    headers: { authorization: `Bearer ${BENCH.reactive.apiKey}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : undefined };
}

/** The reactive gateway's sensor ids by key, or why they are not there. */
async function reactiveSensors(ctx: Context): Promise<Record<string, string> | { unavailable: string }> {
  const devices = await api(ctx, 'GET', `/v1/devices?serial=${BENCH.reactive.serial}`);
  const device = devices.json?.data?.[0];
  if (devices.status !== 200 || !device) return { unavailable: `GET /v1/devices → ${devices.status}: reactive gateway not provisioned` };
  const sensors = await api(ctx, 'GET', `/v1/sensors?device_id=${device.id}&limit=100`);
  if (sensors.status !== 200) return { unavailable: `GET /v1/sensors → ${sensors.status}` };
  return Object.fromEntries((sensors.json.data as { key: string; id: string }[]).map((s) => [s.key, s.id]));
}

/** One threshold on every sensor of the reactive gateway (a range the bench values stay inside: evaluated, never triggered). */
async function ensureThresholds(ctx: Context, sensorIds: string[]): Promise<string | undefined> {
  const existing = await api(ctx, 'GET', '/v1/alarm-thresholds?limit=1000');
  if (existing.status !== 200) return `GET /v1/alarm-thresholds → ${existing.status}`;
  const watched = new Set((existing.json.data as { sensor_id: string }[]).map((t) => t.sensor_id));
  for (const sensorId of sensorIds) {
    if (watched.has(sensorId)) continue;
    const created = await api(ctx, 'POST', '/v1/alarm-thresholds', { sensor_id: sensorId, min: -1000, max: 1000, delay_seconds: 60 });
    if (created.status !== 201) return `POST /v1/alarm-thresholds → ${created.status}`;
  }
  return undefined;
}

/** Enables or disables every threshold of the reactive organization, then waits out the servers' one-second threshold cache. */
async function setThresholdsEnabled(ctx: Context, enabled: boolean): Promise<void> {
  const existing = await api(ctx, 'GET', '/v1/alarm-thresholds?limit=1000');
  for (const threshold of existing.json.data as { id: string; enabled: boolean }[]) {
    if (threshold.enabled === enabled) continue;
    const patched = await api(ctx, 'PATCH', `/v1/alarm-thresholds/${threshold.id}`, { enabled });
    if (patched.status !== 200) throw new Error(`PATCH /v1/alarm-thresholds → ${patched.status}`);
  }
  await new Promise((resolve) => setTimeout(resolve, 1_200));
}

/**
 * The reactive gateway's ingest with its thresholds enabled or disabled before each run: the same
 * organization, sensors and request shape either way, so the ratio is what evaluation costs.
 * Each side writes windows of its own (no run resends another's readings).
 */
async function reactiveIngest(ctx: Context, thresholdsEnabled: boolean, offsetMs: number): Promise<Prepared> {
  const sensors = await reactiveSensors(ctx);
  if ('unavailable' in sensors) return sensors as { unavailable: string };
  const problem = await ensureThresholds(ctx, Object.values(sensors));
  if (problem) return { unavailable: problem };
  await setThresholdsEnabled(ctx, thresholdsEnabled);
  const run = await ingestRunner(ctx, BENCH.reactive.token, Object.keys(sensors), offsetMs);
  if (typeof run !== 'function') return run;
  return async (duration) => {
    await setThresholdsEnabled(ctx, thresholdsEnabled);
    return run(duration);
  };
}

export const ingestWithThresholdsScenario: Scenario = {
  id: 'ingest-alarms',
  title: '8. ingest with a threshold on every sensor',
  kind: 'throughput',
  unit: 'readings/s',
  multiplier: (cfg) => cfg.batch,
  connections: (cfg) => cfg.ingestConnections,
  target: '≥ 85% of the same ingest without thresholds',
  check: (sc, ref) => (ref ? sc.rate >= 0.85 * ref.rate : undefined),
  sensorcloud: (ctx) => reactiveIngest(ctx, true, -36 * HOUR),
  reference: {
    name: 'the same ingest, thresholds disabled',
    prepare: (ctx) => reactiveIngest(ctx, false, -72 * HOUR),
    serverPid: () => 'sensorcloud',
    perBackend: true,
  },
};

interface Receiver {
  url: string;
  /** Receipt time (performance.now()) by reading timestamp (the event's data.ts). */
  received: Map<string, number>;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const received = new Map<string, number>();
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const at = performance.now();
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data?: { ts?: string } };
        if (body.data?.ts && !received.has(body.data.ts)) received.set(body.data.ts, at);
      } catch {
        // not an event: counted nowhere
      }
      response.writeHead(204).end();
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function stats(values: number[]): LatencyStats {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return {
    count: sorted.length,
    mean: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: sorted.at(-1) ?? Number.NaN,
  };
}

function result(duration: number, delivered: number, sent: number, latencies: number[]): LoadResult {
  const latency = stats(latencies);
  return {
    duration,
    ok: delivered,
    non2xx: 0,
    errors: sent - delivered,
    timeouts: 0,
    statuses: {},
    rps: delivered / duration,
    latency,
    autocannon: { p50: latency.p50, p99: latency.p99, rpsAverage: delivered / duration },
  };
}

/**
 * A receiver and a reading.created subscription of the reactive organization for the runner's
 * life; each run writes readings (which raise the events) in a window of its own.
 */
async function webhookRunner(
  ctx: Context,
  run: (send: (readings: { sensor: string; ts: number }[]) => Promise<number>, receiver: Receiver, duration: number) => Promise<LoadResult>,
): Promise<Prepared> {
  const sensors = await reactiveSensors(ctx);
  if ('unavailable' in sensors) return sensors as { unavailable: string };
  const receiver = await startReceiver();
  const created = await api(ctx, 'POST', '/v1/webhooks', { url: receiver.url, event_types: ['reading.created'] });
  if (created.status !== 201) {
    await receiver.close();
    return { unavailable: `POST /v1/webhooks → ${created.status} ${JSON.stringify(created.json).slice(0, 120)}` };
  }
  const send = async (readings: { sensor: string; ts: number }[]) => {
    const started = performance.now();
    const response = await fetch(`${ctx.url}/v1/ingest`, {
      method: 'POST',
      headers: { authorization: `Bearer ${BENCH.reactive.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(readings.map((r) => ({ sensor: r.sensor, ts: new Date(r.ts).toISOString(), value: 20 }))),
    });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`ingest → ${response.status}`);
    return started;
  };
  let runs = 0;
  return async (duration) => {
    runs += 1;
    try {
      return await run(send, receiver, duration);
    } finally {
      // The subscription goes with the last run (warm-up + measured runs), so later scenarios ingest without it.
      if (runs === (ctx.cfg.warmup > 0 ? 1 : 0) + ctx.cfg.runs) {
        await api(ctx, 'DELETE', `/v1/webhooks/${created.json.data.id}`);
        await receiver.close();
      }
    }
  };
}

let window = 0;
/** Reading times of one run: a window of their own, far from every other scenario's. */
const nextWindow = () => Date.UTC(2020, 0, 1) + HOUR * 24 * window++;

export const webhookThroughputScenario: Scenario = {
  id: 'webhooks',
  title: '9. webhook deliveries, sustained (backlog)',
  kind: 'throughput',
  unit: 'deliveries/s',
  multiplier: () => 1,
  connections: () => 1,
  target: '≥ 1,000 deliveries/s',
  check: (sc) => sc.rate >= 1_000,
  sensorcloud: (ctx) =>
    webhookRunner(ctx, async (send, receiver, duration) => {
      // A backlog of events (batches of 200 readings) as fast as ingest takes them, then the time
      // until the last is delivered: the delivery rate, whatever ingest does meanwhile.
      const base = nextWindow();
      const count = Math.max(2_000, Math.round(1_500 * duration));
      const keys = [...BENCH.gateway.sensors];
      const sentAt = new Map<string, number>();
      const started = performance.now();
      for (let i = 0; i < count; i += 200) {
        const readings = Array.from({ length: Math.min(200, count - i) }, (_, j) => ({
          sensor: keys[(i + j) % keys.length]!,
          ts: base + (i + j) * 1000,
        }));
        const at = await send(readings);
        for (const r of readings) sentAt.set(new Date(r.ts).toISOString(), at);
      }
      const deadline = performance.now() + 120_000;
      const ours = () => [...sentAt.keys()].filter((ts) => receiver.received.has(ts)).length;
      while (ours() < count && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      const times = [...sentAt.keys()].map((ts) => receiver.received.get(ts)).filter((t) => t !== undefined);
      const elapsed = (Math.max(...times) - started) / 1000;
      const latencies = [...sentAt.entries()]
        .filter(([ts]) => receiver.received.has(ts))
        .map(([ts, at]) => receiver.received.get(ts)! - at);
      return result(elapsed, times.length, count, latencies);
    }),
};

export const webhookLatencyScenario: Scenario = {
  id: 'webhook-latency',
  title: '10. event to first delivery attempt, idle server',
  kind: 'latency',
  unit: 'events/s',
  multiplier: () => 1,
  connections: () => 1,
  target: 'p50 ≤ 100 ms, p99 ≤ 1 s',
  check: (sc) => sc.p50 <= 100 && sc.p99 <= 1_000,
  sensorcloud: (ctx) =>
    webhookRunner(ctx, async (send, receiver, duration) => {
      // One reading every 25 ms; latency from the ingest request's start (the event is committed
      // before its answer) to the receiver's receipt.
      const base = nextWindow();
      const sent: [string, number][] = [];
      const end = performance.now() + duration * 1000;
      for (let i = 0; performance.now() < end; i += 1) {
        const ts = base + i * 1000;
        sent.push([new Date(ts).toISOString(), await send([{ sensor: BENCH.gateway.sensors[0]!, ts }])]);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      const deadline = performance.now() + 10_000;
      while (sent.some(([ts]) => !receiver.received.has(ts)) && performance.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 20));
      const latencies = sent.filter(([ts]) => receiver.received.has(ts)).map(([ts, at]) => receiver.received.get(ts)! - at);
      return result(duration, latencies.length, sent.length, latencies);
    }),
};

export const REACTIVE_SCENARIOS: Scenario[] = [ingestWithThresholdsScenario, webhookThroughputScenario, webhookLatencyScenario];
