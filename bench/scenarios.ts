/**
 * The scenarios of issue #5: what sensorcloud is asked to do, the reference it is judged against
 * (run in the same bench run, on the same machine) and the target. Each `prepare` probes the
 * endpoint once and answers either a runner or why the scenario cannot run yet (an endpoint
 * missing, nothing seeded), so the harness works while the server is being built.
 */
import { availableParallelism } from 'node:os';
import type { BenchConfig } from './config.js';
import type { Tenant, SeedSummary } from './lib/database.js';
import { BENCH, FORM, basic } from './lib/fixtures.js';
import type { LoadResult, LoadSpec, RequestSpec } from './lib/load-types.js';
import { TSX, runNode } from './lib/proc.js';
import type { Summary } from './lib/report.js';

export type Runner = (duration: number) => Promise<LoadResult>;
export type Prepared = Runner | { unavailable: string };

export interface Context {
  cfg: BenchConfig;
  backend: 'postgres' | 'embedded';
  /** sensorcloud under test. */
  url: string;
  tenant: Tenant;
  seed: SeedSummary;
  refs: {
    fastifyUrl: string;
    fastifyPid: number;
    oidcUrl: string;
    oidcPid: number;
    oidcClient: { id: string; secret: string };
    /** A bare aedes broker (bench/refs/aedes.ts). */
    aedesMqttUrl: string;
    aedesPid: number;
  };
  /** sensorcloud's built-in MQTT broker. */
  mqttUrl: string;
  /** PostgreSQL database of this backend (COPY reference); undefined on the embedded database. */
  databaseUrl: string | undefined;
  copy: { copySql: string; row: string } | { unavailable: string } | undefined;
}

export interface Scenario {
  id: string;
  title: string;
  kind: 'throughput' | 'latency';
  unit: string;
  /** Each request counts this many units (readings per ingest batch). */
  multiplier(cfg: BenchConfig): number;
  connections(cfg: BenchConfig): number;
  target: string;
  check(sc: Summary, ref: Summary | undefined): boolean | undefined;
  sensorcloud(ctx: Context): Promise<Prepared>;
  reference?: {
    name: string;
    prepare(ctx: Context): Promise<Prepared>;
    /** The process serving the reference, for the CPU table: `sensorcloud` when the reference is sensorcloud configured otherwise. */
    serverPid?(ctx: Context): number | 'sensorcloud';
    /** Measured again on each backend (a reference that is sensorcloud itself) rather than once, on PostgreSQL. */
    perBackend?: boolean;
  };
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const out = await runNode([...TSX, 'bench/children/load.ts', JSON.stringify(spec)]);
  const line = out.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as LoadResult;
}

function http(url: string, connections: number, requests: RequestSpec[], followPages = false): Runner {
  return (duration) => runLoad({ url, connections, duration, requests, ...(followPages && { followPages }) });
}

async function probe(url: string, init: RequestInit): Promise<{ status: number; body: string; json: unknown }> {
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
    const body = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      json = undefined;
    }
    return { status: response.status, body, json };
  } catch (error) {
    return { status: 0, body: String(error), json: undefined };
  }
}

function describe(method: string, path: string, p: { status: number; body: string }): string {
  return `${method} ${path.split('?')[0]} → ${p.status || 'no answer'} ${p.body.replace(/\s+/g, ' ').slice(0, 120)}`;
}

const ccBody = `grant_type=client_credentials&scope=${encodeURIComponent(BENCH.scope)}`;

async function clientCredentialsToken(
  url: string,
  tokenPath: string,
  id: string,
  secret: string,
): Promise<string | { unavailable: string }> {
  const p = await probe(url + tokenPath, {
    method: 'POST',
    headers: { authorization: basic(id, secret), 'content-type': FORM },
    body: ccBody,
  });
  const token = (p.json as { access_token?: unknown } | undefined)?.access_token;
  if (p.status !== 200 || typeof token !== 'string') return { unavailable: describe('POST', tokenPath, p) };
  return token;
}

const tokenScenario: Scenario = {
  id: 'token',
  title: '1. client_credentials token',
  kind: 'throughput',
  unit: 'req/s',
  multiplier: () => 1,
  connections: (cfg) => cfg.connections,
  target: '≥ 2× oidc-provider',
  check: (sc, ref) => (ref ? sc.rate >= 2 * ref.rate : undefined),
  async sensorcloud(ctx) {
    const token = await clientCredentialsToken(ctx.url, '/oauth/token', BENCH.client.id, BENCH.client.secret);
    if (typeof token !== 'string') return token;
    return http(ctx.url, ctx.cfg.connections, [
      {
        method: 'POST',
        path: '/oauth/token',
        headers: { authorization: basic(BENCH.client.id, BENCH.client.secret), 'content-type': FORM },
        body: ccBody,
      },
    ]);
  },
  reference: {
    name: 'oidc-provider',
    serverPid: (ctx) => ctx.refs.oidcPid,
    async prepare(ctx) {
      const { oidcUrl, oidcClient } = ctx.refs;
      const token = await clientCredentialsToken(oidcUrl, '/token', oidcClient.id, oidcClient.secret);
      if (typeof token !== 'string') return token;
      return http(oidcUrl, ctx.cfg.connections, [
        {
          method: 'POST',
          path: '/token',
          headers: { authorization: basic(oidcClient.id, oidcClient.secret), 'content-type': FORM },
          body: ccBody,
        },
      ]);
    },
  },
};

async function introspection(
  url: string,
  tokenPath: string,
  introspectPath: string,
  id: string,
  secret: string,
  connections: number,
): Promise<Prepared> {
  const token = await clientCredentialsToken(url, tokenPath, id, secret);
  if (typeof token !== 'string') return token;
  const request = {
    method: 'POST',
    path: introspectPath,
    headers: { authorization: basic(id, secret), 'content-type': FORM },
    body: `token=${encodeURIComponent(token)}`,
  };
  const p = await probe(url + introspectPath, { method: 'POST', headers: request.headers, body: request.body });
  if (p.status !== 200 || (p.json as { active?: unknown } | undefined)?.active !== true)
    return { unavailable: describe('POST', introspectPath, p) };
  return http(url, connections, [request]);
}

const introspectScenario: Scenario = {
  id: 'introspect',
  title: '2. introspection (valid token)',
  kind: 'throughput',
  unit: 'req/s',
  multiplier: () => 1,
  connections: (cfg) => cfg.connections,
  target: '≥ 3× oidc-provider',
  check: (sc, ref) => (ref ? sc.rate >= 3 * ref.rate : undefined),
  sensorcloud: (ctx) =>
    introspection(ctx.url, '/oauth/token', '/oauth/introspect', BENCH.client.id, BENCH.client.secret, ctx.cfg.connections),
  reference: {
    name: 'oidc-provider',
    serverPid: (ctx) => ctx.refs.oidcPid,
    prepare: (ctx) =>
      introspection(
        ctx.refs.oidcUrl,
        '/token',
        '/token/introspection',
        ctx.refs.oidcClient.id,
        ctx.refs.oidcClient.secret,
        ctx.cfg.connections,
      ),
  },
};

/** A bearer that may read the measured sensor: an OAuth access token, else the API key. */
async function readerBearer(ctx: Context, path: string): Promise<{ authorization: string } | { unavailable: string }> {
  const candidates: string[] = [];
  const token = await clientCredentialsToken(ctx.url, '/oauth/token', BENCH.client.id, BENCH.client.secret);
  if (typeof token === 'string') candidates.push(token);
  candidates.push(BENCH.apiKey);
  let last = '';
  for (const credential of candidates) {
    const authorization = `Bearer ${credential}`;
    const p = await probe(ctx.url + path, { headers: { authorization, accept: 'application/json' } });
    if (p.status === 200) return { authorization };
    last = describe('GET', path, p);
  }
  return { unavailable: last };
}

const latestScenario: Scenario = {
  id: 'latest',
  title: '3. GET latest reading (authenticated)',
  kind: 'throughput',
  unit: 'req/s',
  multiplier: () => 1,
  connections: (cfg) => cfg.connections,
  target: '≥ 40% of bare Fastify',
  check: (sc, ref) => (ref ? sc.rate >= 0.4 * ref.rate : undefined),
  async sensorcloud(ctx) {
    if (!ctx.tenant.sensorId) return { unavailable: 'no sensor provisioned yet' };
    const path = `/v1/sensors/${ctx.tenant.sensorId}/readings/latest`;
    const bearer = await readerBearer(ctx, path);
    if ('unavailable' in bearer) return bearer;
    return http(ctx.url, ctx.cfg.connections, [
      { method: 'GET', path, headers: { authorization: bearer.authorization, accept: 'application/json' } },
    ]);
  },
  reference: {
    name: 'bare Fastify',
    serverPid: (ctx) => ctx.refs.fastifyPid,
    async prepare(ctx) {
      const path = '/v1/sensors/00000000-0000-4000-8000-000000000000/readings/latest';
      const p = await probe(ctx.refs.fastifyUrl + path, {});
      if (p.status !== 200) return { unavailable: describe('GET', path, p) };
      return http(ctx.refs.fastifyUrl, ctx.cfg.connections, [{ method: 'GET', path, headers: { accept: 'application/json' } }]);
    },
  },
};

function readingsCount(json: unknown): number {
  const data = (json as { data?: unknown } | undefined)?.data;
  return Array.isArray(data) ? data.length : 0;
}

const rangeScenario: Scenario = {
  id: 'range-day',
  title: '4a. 1-day range, minute readings (all pages)',
  kind: 'latency',
  unit: 'ops/s',
  multiplier: () => 1,
  connections: () => 1,
  target: 'p50 ≤ 5 ms',
  check: (sc) => sc.p50 <= 5,
  async sensorcloud(ctx) {
    if (!ctx.tenant.sensorId) return { unavailable: 'no sensor provisioned yet' };
    if (ctx.seed.status !== 'seeded') return { unavailable: `readings not seeded: ${ctx.seed.reason ?? ''}` };
    // One UTC day of the seeded span, picked at random per operation. A day is 1,440 rows and the
    // API's largest page is 1,000, so an operation is two requests (the second via links.next).
    const template = `/v1/sensors/${ctx.tenant.sensorId}/readings?from=%FROM%&to=%TO%&limit=1000`;
    const first = new Date(ctx.seed.startMs);
    const path = template
      .replace('%FROM%', encodeURIComponent(first.toISOString()))
      .replace('%TO%', encodeURIComponent(new Date(ctx.seed.startMs + 86_400_000).toISOString()));
    const bearer = await readerBearer(ctx, path);
    if ('unavailable' in bearer) return bearer;
    const p = await probe(ctx.url + path, { headers: { authorization: bearer.authorization, accept: 'application/json' } });
    if (readingsCount(p.json) === 0) return { unavailable: `${describe('GET', path, p)} (no rows)` };
    return http(
      ctx.url,
      1,
      [
        {
          method: 'GET',
          path: template,
          headers: { authorization: bearer.authorization, accept: 'application/json' },
          generator: { kind: 'random-day', firstDayMs: ctx.seed.startMs, days: Math.max(1, ctx.seed.days - 1), seed: 42 },
        },
      ],
      true,
    );
  },
};

const aggregateScenario: Scenario = {
  id: 'aggregate-year',
  title: '4b. 1-year hourly aggregate (all pages)',
  kind: 'latency',
  unit: 'ops/s',
  multiplier: () => 1,
  connections: () => 1,
  target: 'p50 ≤ 100 ms',
  check: (sc) => sc.p50 <= 100,
  async sensorcloud(ctx) {
    if (!ctx.tenant.sensorId) return { unavailable: 'no sensor provisioned yet' };
    if (ctx.seed.status !== 'seeded') return { unavailable: `readings not seeded: ${ctx.seed.reason ?? ''}` };
    const from = new Date(ctx.seed.endMs - 365 * 86_400_000).toISOString();
    const to = new Date(ctx.seed.endMs).toISOString();
    const path = `/v1/sensors/${ctx.tenant.sensorId}/readings?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&interval=PT1H&aggregate=avg&limit=1000`;
    const bearer = await readerBearer(ctx, path);
    if ('unavailable' in bearer) return bearer;
    const p = await probe(ctx.url + path, { headers: { authorization: bearer.authorization, accept: 'application/json' } });
    if (readingsCount(p.json) === 0) return { unavailable: `${describe('GET', path, p)} (no buckets)` };
    // 8,760 hourly bins: nine pages of at most 1,000, all fetched (links.next) in one operation.
    return http(ctx.url, 1, [{ method: 'GET', path, headers: { authorization: bearer.authorization, accept: 'application/json' } }], true);
  },
};

const HOUR = 3_600_000;
const INGEST_STEP_MS = 10;

/** The wire format of one reading in an ingest batch (device token: sensor by key). */
export const INGEST_FORMAT = {
  contentType: 'application/json',
  line: '{"sensor":"%SENSOR%","ts":"%TS%","value":%VALUE%}',
  ndjson: false,
  wrap: '{"readings":[%ROWS%]}',
};

/**
 * Batches of `cfg.batch` readings from a device (sensors by key), probed once; each run writes a
 * time window of its own, two hours apart from `offsetMs` before now, so nothing is a resend.
 */
export async function ingestRunner(ctx: Context, deviceToken: string, sensors: string[], offsetMs: number): Promise<Prepared> {
  const headers = { authorization: `Bearer ${deviceToken}`, 'content-type': INGEST_FORMAT.contentType };
  const base = Math.floor(Date.now() / HOUR) * HOUR + offsetMs;
  const probeBody = INGEST_FORMAT.wrap.replace(
    '%ROWS%',
    sensors
      .map((s) =>
        INGEST_FORMAT.line
          .replace('%SENSOR%', s)
          .replace('%TS%', new Date(base - HOUR).toISOString())
          .replace('%VALUE%', '21.5'),
      )
      .join(','),
  );
  const p = await probe(`${ctx.url}/v1/ingest`, { method: 'POST', headers, body: probeBody });
  if (p.status < 200 || p.status >= 300) return { unavailable: describe('POST', '/v1/ingest', p) };
  let slot = 0;
  return (duration) =>
    runLoad({
      url: ctx.url,
      connections: ctx.cfg.ingestConnections,
      duration,
      requests: [
        {
          method: 'POST',
          path: '/v1/ingest',
          headers,
          generator: {
            kind: 'ingest',
            sensors,
            batch: ctx.cfg.batch,
            startMs: base + 2 * HOUR * slot++,
            stepMs: INGEST_STEP_MS,
            ...INGEST_FORMAT,
          },
        },
      ],
    });
}

const ingestScenario: Scenario = {
  id: 'ingest',
  title: '5. ingest, batches of 1,000 over HTTP',
  kind: 'throughput',
  unit: 'readings/s',
  multiplier: (cfg) => cfg.batch,
  connections: (cfg) => cfg.ingestConnections,
  target: '≥ 100,000 readings/s and ≥ 50% of COPY',
  check: (sc, ref) => sc.rate >= 100_000 && (ref ? sc.rate >= 0.5 * ref.rate : false),
  async sensorcloud(ctx) {
    const sensors = BENCH.gateway.sensors.filter((key) => ctx.tenant.gatewaySensors[key]);
    if (sensors.length === 0) return { unavailable: 'gateway sensors not provisioned yet' };
    return ingestRunner(ctx, BENCH.gateway.token, sensors, -36 * HOUR);
  },
  reference: {
    name: 'raw COPY',
    async prepare(ctx) {
      if (!ctx.databaseUrl || !ctx.copy) return { unavailable: 'PostgreSQL only' };
      if ('unavailable' in ctx.copy) return ctx.copy;
      const copy = ctx.copy;
      const sensors = Object.values(ctx.tenant.gatewaySensors);
      if (sensors.length === 0) return { unavailable: 'gateway sensors not provisioned yet' };
      const base = Math.floor(Date.now() / HOUR) * HOUR - 72 * HOUR;
      let slot = 0;
      return async (duration) => {
        const spec = {
          ...copy,
          sensors,
          batch: ctx.cfg.batch,
          startMs: base + 2 * HOUR * slot++,
          stepMs: INGEST_STEP_MS,
          connections: ctx.cfg.ingestConnections,
          duration,
        };
        const out = await runNode([...TSX, 'bench/refs/copy.ts'], { DATABASE_URL: ctx.databaseUrl, SPEC: JSON.stringify(spec) });
        return JSON.parse(out.trim().split('\n').pop() ?? '') as LoadResult;
      };
    },
  },
};

const passwordBody = `grant_type=password&username=${encodeURIComponent(BENCH.user.email)}&password=${encodeURIComponent(BENCH.user.password)}&scope=${encodeURIComponent(BENCH.scope)}`;

const passwordScenario: Scenario = {
  id: 'password',
  title: '6. password grant',
  kind: 'throughput',
  unit: 'req/s',
  multiplier: () => 1,
  connections: (cfg) => cfg.passwordConnections,
  target: '≥ 90% of raw argon2id',
  check: (sc, ref) => (ref ? sc.rate >= 0.9 * ref.rate : undefined),
  async sensorcloud(ctx) {
    const headers = { authorization: basic(BENCH.client.id, BENCH.client.secret), 'content-type': FORM };
    const p = await probe(`${ctx.url}/oauth/token`, { method: 'POST', headers, body: passwordBody });
    if (p.status !== 200) return { unavailable: describe('POST', '/oauth/token', p) };
    return http(ctx.url, ctx.cfg.passwordConnections, [{ method: 'POST', path: '/oauth/token', headers, body: passwordBody }]);
  },
  reference: {
    name: 'raw argon2id',
    async prepare(ctx) {
      return async (duration) => {
        // One libuv thread per core: raw argon2id's best on this machine (libuv's default four
        // threads thrash the caches of a two-core host: 167/s against 218/s), and how the server
        // runs it (src/security/argon2-pool.ts).
        const threads = String(availableParallelism());
        const out = await runNode([...TSX, 'bench/refs/argon2.ts'], {
          DURATION: String(duration),
          CONCURRENCY: String(ctx.cfg.passwordConnections),
          UV_THREADPOOL_SIZE: threads,
        });
        return JSON.parse(out.trim().split('\n').pop() ?? '') as LoadResult;
      };
    },
  },
};

export const SCENARIOS: Scenario[] = [
  tokenScenario,
  introspectScenario,
  latestScenario,
  rangeScenario,
  aggregateScenario,
  ingestScenario,
  passwordScenario,
];
