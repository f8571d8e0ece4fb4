/**
 * The load generator, always run as its own process (`node --import tsx bench/children/load.ts
 * SPEC_JSON`) so it never shares an event loop with a server under test. It drives autocannon
 * programmatically: the same engine as `autocannon --json`, plus per-request bodies (ingest batches
 * must be distinct, range queries pick a random day) and exact float latencies taken from
 * autocannon's `response` event (its own histogram rounds to whole milliseconds, too coarse for a
 * 5 ms target). Prints one JSON line: the LoadResult.
 */
import http from 'node:http';
import autocannon from 'autocannon';
import type { LoadResult, LoadSpec, RequestSpec } from '../lib/load-types.js';
import { summarize } from '../lib/stats.js';

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;

/** Deterministic PRNG (mulberry32) so two runs ask for the same sequence of days. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type ACRequest = NonNullable<autocannon.Options['requests']>[number];

function buildRequest(r: RequestSpec): ACRequest {
  const base: ACRequest = { method: r.method as ACRequest['method'], path: r.path, headers: r.headers ?? {} };
  if (r.body !== undefined) base.body = r.body;
  const gen = r.generator;
  if (!gen) return base;
  if (gen.kind === 'ingest') {
    // Each request: `batch` readings, distinct (sensor, timestamp) pairs across the whole run.
    // Sensors take turns inside a batch, timestamps advance 1 ms per row-set; the start offset
    // keeps separate runs (and the COPY reference) in disjoint time windows.
    let next = 0;
    const sensors = gen.sensors;
    const perBatchTimes = Math.ceil(gen.batch / sensors.length);
    return {
      ...base,
      setupRequest: (req) => {
        const batchNo = next++;
        const t0 = gen.startMs + batchNo * perBatchTimes * gen.stepMs;
        const lines: string[] = [];
        let n = 0;
        for (let t = 0; t < perBatchTimes && n < gen.batch; t++) {
          const ts = new Date(t0 + t * gen.stepMs).toISOString();
          for (let s = 0; s < sensors.length && n < gen.batch; s++, n++) {
            const value = Math.round((20 + Math.sin((batchNo + t + s) / 50) * 5) * 100) / 100;
            lines.push(gen.line.replace('%SENSOR%', sensors[s]!).replace('%TS%', ts).replace('%VALUE%', String(value)));
          }
        }
        req.body = gen.ndjson ? `${lines.join('\n')}\n` : gen.wrap.replace('%ROWS%', lines.join(','));
        return req;
      },
    };
  }
  if (gen.kind === 'random-day') {
    const nextPath = pathMaker(r);
    return {
      ...base,
      setupRequest: (req) => {
        req.path = nextPath();
        return req;
      },
    };
  }
  return base;
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1e6;
}

/** Fills in a random-day path the way the autocannon setupRequest does. */
function pathMaker(r: RequestSpec): () => string {
  const gen = r.generator;
  if (gen?.kind !== 'random-day') return () => r.path;
  const random = prng(gen.seed);
  return () => {
    const day = Math.floor(random() * gen.days);
    const from = new Date(gen.firstDayMs + day * 86_400_000);
    const to = new Date(from.getTime() + 86_400_000);
    return r.path.replace('%FROM%', encodeURIComponent(from.toISOString())).replace('%TO%', encodeURIComponent(to.toISOString()));
  };
}

/** followPages: each connection fetches a range page after page until links.next is gone. */
async function followPages(): Promise<void> {
  const r = spec.requests[0]!;
  const nextPath = pathMaker(r);
  const opLatencies: number[] = [];
  const pageLatencies: number[] = [];
  const statuses: Record<string, number> = {};
  let failures = 0;
  let errors = 0;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const deadline = started + spec.duration * 1000;
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections });
  const base = new URL(spec.url);
  /** One GET on a kept-alive socket; the body stays bytes (no JSON.parse on the timed path). */
  const get = (path: string) =>
    new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const req = http.request({ host: base.hostname, port: base.port, path, method: r.method, headers: r.headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  /** links.next of a page, found as bytes: readings never hold a "next" member. */
  const nextOf = (body: Buffer): string | undefined => {
    const key = body.lastIndexOf('"next":"');
    if (key < 0) return undefined;
    const start = key + 8;
    const end = body.indexOf('"', start);
    const url = new URL(JSON.parse(`"${body.toString('utf8', start, end)}"`) as string, spec.url);
    return url.pathname + url.search;
  };
  async function connection(): Promise<void> {
    while (performance.now() < deadline) {
      let path: string | undefined = nextPath();
      const t0 = performance.now();
      let ok = true;
      while (path) {
        const p0 = performance.now();
        try {
          const { status, body } = await get(path);
          statuses[status] = (statuses[status] ?? 0) + 1;
          if (status !== 200) {
            ok = false;
            break;
          }
          pageLatencies.push(performance.now() - p0);
          path = nextOf(body);
        } catch {
          errors++;
          ok = false;
          break;
        }
      }
      if (ok) opLatencies.push(performance.now() - t0);
      else failures++;
    }
  }
  await Promise.all(Array.from({ length: spec.connections }, connection));
  agent.destroy();
  const elapsed = (performance.now() - started) / 1000;
  const stats = summarize(opLatencies);
  const out: LoadResult = {
    duration: elapsed,
    ok: opLatencies.length,
    non2xx: failures,
    errors,
    timeouts: 0,
    statuses,
    rps: opLatencies.length / elapsed,
    latency: stats,
    autocannon: { p50: Number.NaN, p99: Number.NaN, rpsAverage: Number.NaN },
    cpuSeconds: cpuSeconds(cpu0),
    pages: { perOperation: opLatencies.length ? pageLatencies.length / opLatencies.length : Number.NaN, latency: summarize(pageLatencies) },
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

async function main(): Promise<void> {
  if (spec.followPages) return followPages();
  const latencies: number[] = [];
  let ok = 0;
  let non2xx = 0;
  const statuses: Record<string, number> = {};
  const cpu0 = process.cpuUsage();
  const instance = autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: spec.duration,
    pipelining: 1,
    timeout: spec.timeout ?? 30,
    requests: spec.requests.map(buildRequest),
  });
  const onResponse = (_client: unknown, statusCode: number, _bytes: number, responseTime: number): void => {
    statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
    if (statusCode >= 200 && statusCode < 300) {
      ok++;
      latencies.push(responseTime);
    } else {
      non2xx++;
    }
  };
  (instance as unknown as NodeJS.EventEmitter).on('response', onResponse);
  const result = await instance;
  const stats = summarize(latencies);
  const out: LoadResult = {
    duration: result.duration,
    ok,
    non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statuses,
    rps: ok / result.duration,
    latency: stats,
    autocannon: { p50: result.latency.p50, p99: result.latency.p99, rpsAverage: result.requests.average },
    cpuSeconds: cpuSeconds(cpu0),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error instanceof Error ? error.stack : error)}\n`);
  process.exit(1);
});
