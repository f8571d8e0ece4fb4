/**
 * Everything `npm run bench` reads from its environment. Defaults are sized so the whole run
 * (build, seeding 10 million readings, both databases, every reference) stays under 15 minutes on
 * a 2-core machine; BENCH_QUICK=1 shrinks everything for a smoke run of about two minutes.
 */

function num(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got "${raw}"`);
  return value;
}

function list(name: string): string[] | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function flag(name: string, fallback: boolean): boolean {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  return !['0', 'false', 'no', 'off'].includes(raw.toLowerCase());
}

export interface BenchConfig {
  quick: boolean;
  /** Seconds of each measured run. */
  duration: number;
  /** Seconds of the discarded warm-up before a scenario's runs. */
  warmup: number;
  /** Measured runs per scenario and system (the median is reported). */
  runs: number;
  /** Run length on the embedded database (reported for information only). */
  embeddedDuration: number;
  /** Concurrent connections for the throughput scenarios. */
  connections: number;
  /** Concurrent connections for the password grant (argon2 bound: enough to fill the thread pool). */
  passwordConnections: number;
  /** Concurrent batches in flight for ingest (HTTP and COPY alike). */
  ingestConnections: number;
  /** Size of the readings table for the range / aggregate scenarios. */
  readings: number;
  embeddedReadings: number;
  /** Sensors the readings are spread over (besides the one measured). */
  sensors: number;
  /** Readings per ingest batch. */
  batch: number;
  /** Sensors of minute data (30 days) of the SQL-access scenario's organization. */
  sqlSensors: number;
  /** Admin URL of the PostgreSQL server; the bench creates and drops its own database there. */
  postgresUrl: string;
  /** Which backends to run: postgres, embedded. */
  backends: ('postgres' | 'embedded')[];
  /** Only these scenario ids (e.g. `token,introspect`); all when unset. */
  only: string[] | undefined;
  /** Scenario id whose sensorcloud server runs under `node --cpu-prof` (only that scenario, no reference runs). */
  cpuProfile: string | undefined;
  /** Keep the PostgreSQL database (and print its name) instead of dropping it. */
  keepDatabase: boolean;
  /** Log level of the sensorcloud server under test (its log goes to a file, as in production). */
  logLevel: string;
  skipBuild: boolean;
}

export function loadBenchConfig(): BenchConfig {
  const quick = flag('BENCH_QUICK', false);
  const cpuProfile = process.env.BENCH_CPU_PROFILE || undefined;
  // A profiling run is about one scenario on PostgreSQL unless told otherwise.
  const backends = (list('BENCH_BACKENDS') ?? (cpuProfile ? ['postgres'] : ['postgres', 'embedded'])).map((b) => {
    if (b !== 'postgres' && b !== 'embedded') throw new Error(`BENCH_BACKENDS: unknown backend "${b}"`);
    return b;
  });
  const runs = Math.max(1, Math.round(num('BENCH_RUNS', 3)));
  const duration = num('BENCH_DURATION', quick ? 2 : 6);
  return {
    quick,
    duration,
    warmup: num('BENCH_WARMUP', quick ? 1 : 2),
    runs,
    embeddedDuration: num('BENCH_EMBEDDED_DURATION', quick ? duration : Math.min(duration, 4)),
    connections: Math.max(1, Math.round(num('BENCH_CONNECTIONS', 10))),
    passwordConnections: Math.max(1, Math.round(num('BENCH_PASSWORD_CONNECTIONS', 8))),
    ingestConnections: Math.max(1, Math.round(num('BENCH_INGEST_CONNECTIONS', 4))),
    readings: Math.round(num('BENCH_READINGS', quick ? 300_000 : 10_000_000)),
    embeddedReadings: Math.round(num('BENCH_EMBEDDED_READINGS', quick ? 100_000 : 1_000_000)),
    sensors: Math.max(1, Math.round(num('BENCH_SENSORS', quick ? 200 : 2000))),
    batch: Math.max(1, Math.round(num('BENCH_BATCH', 1000))),
    sqlSensors: Math.max(1, Math.round(num('BENCH_SQL_SENSORS', quick ? 20 : 200))),
    postgresUrl: process.env.BENCH_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
    backends,
    only: list('BENCH_ONLY'),
    cpuProfile,
    keepDatabase: flag('BENCH_KEEP_DB', false),
    logLevel: process.env.BENCH_LOG_LEVEL || 'info',
    skipBuild: flag('BENCH_SKIP_BUILD', false),
  };
}
