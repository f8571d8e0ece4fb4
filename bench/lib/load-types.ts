/** What the orchestrator asks of a load child, and what it answers (JSON over argv / stdout). */

export interface IngestGenerator {
  kind: 'ingest';
  /** Sensor references (ids or keys) written round-robin inside a batch. */
  sensors: string[];
  batch: number;
  startMs: number;
  stepMs: number;
  /** One reading, with %SENSOR%, %TS% and %VALUE% placeholders. */
  line: string;
  /** NDJSON body (one line per reading) or `wrap` with %ROWS% replaced by the comma-joined lines. */
  ndjson: boolean;
  wrap: string;
}

export interface RandomDayGenerator {
  kind: 'random-day';
  /** First day (UTC midnight, epoch ms) of the range picked from. */
  firstDayMs: number;
  days: number;
  seed: number;
}

export interface RequestSpec {
  method: string;
  /** For random-day requests the path holds %FROM% and %TO%. */
  path: string;
  headers?: Record<string, string>;
  body?: string;
  generator?: IngestGenerator | RandomDayGenerator;
}

export interface LoadSpec {
  url: string;
  connections: number;
  duration: number;
  timeout?: number;
  requests: RequestSpec[];
  /**
   * One operation = the first request and then every `links.next` page after it (a whole range,
   * not just its first page). Measured by a keep-alive client in the load process instead of
   * autocannon, which cannot follow links; latencies are per operation, `pageLatency` per page.
   */
  followPages?: boolean;
}

export interface LatencyStats {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface LoadResult {
  duration: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statuses: Record<string, number>;
  /** Successful (2xx) responses per second. */
  rps: number;
  /** Latency of the 2xx responses, milliseconds. */
  latency: LatencyStats;
  autocannon: { p50: number; p99: number; rpsAverage: number };
  /** CPU seconds the load generator itself used while generating load (user + system). */
  cpuSeconds?: number;
  /** CPU seconds of PostgreSQL backends the load generator opened itself (raw COPY). */
  postgresCpuSeconds?: number;
  /** Where the machine's CPU went during this run (filled in by the orchestrator). */
  cpu?: import('./proc.js').CpuSplit;
  /** followPages: pages per operation (mean) and per-page latency. */
  pages?: { perOperation: number; latency: LatencyStats };
}
