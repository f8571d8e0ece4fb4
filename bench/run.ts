/**
 * `npm run bench`: sensorcloud's hot paths against the references they are judged by, in one run,
 * on this machine. See docs/performance.md for what each figure means and how to reproduce it.
 *
 *   build → start references (bare Fastify, oidc-provider) → for each backend (PostgreSQL, then
 *   the embedded database): fresh database, migrate + provision + seed, start `sensorcloud serve`
 *   as a child process → per scenario: warm-up (discarded), then RUNS measured runs alternating
 *   sensorcloud and its reference → table on stdout, JSON in bench/results/<timestamp>.json.
 *
 * Every load generator is its own process (autocannon, COPY, argon2), every server too; all on
 * 127.0.0.1.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { type BenchConfig, loadBenchConfig } from './config.js';
import { copyStatement, createPgDatabase, dropPgDatabase, prepareDatabase } from './lib/database.js';
import { provisioningYaml } from './lib/fixtures.js';
import type { LoadResult } from './lib/load-types.js';
import { type Managed, ROOT, TSX, cpuMeter, freePort, rssMiB, runCommand, sampleRss, startProcess } from './lib/proc.js';
import {
  CPU_HEADER,
  HEADER,
  type Measured,
  cpuRows,
  type ScenarioResult,
  fmtMs,
  fmtRate,
  isMeasured,
  markdownTable,
  rows,
  summarize,
  textTable,
} from './lib/report.js';
import { summarizeProfile } from './profile-summary.js';
import { graphqlScenario } from './graphql.js';
import { mqttScenario } from './mqtt.js';
import { REACTIVE_SCENARIOS } from './reactive.js';
import { releaseSqlAccessLogin, sqlAccessScenario } from './sql-access.js';
import { type Context, type Prepared, type Runner, SCENARIOS, type Scenario } from './scenarios.js';

const cfg: BenchConfig = loadBenchConfig();
if (cfg.cpuProfile && !cfg.only) cfg.only = [cfg.cpuProfile];
const started = Date.now();
const stamp = new Date(started).toISOString().replace(/[:.]/g, '-');
const resultsDir = path.join(ROOT, 'bench', 'results');
const runDir = path.join(resultsDir, stamp);
fs.mkdirSync(runDir, { recursive: true });

const log = (message: string) => process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`);

interface BackendReport {
  backend: 'postgres' | 'embedded';
  database: string;
  seed: unknown;
  provisioning: unknown;
  memory: { idleMiB: number; peakUnderLoadMiB: number; idleAfterLoadMiB: number };
  scenarios: ScenarioResult[];
  cpuProfileDir?: string;
}

const cleanups: (() => Promise<void>)[] = [];
let cleaning: Promise<void> | undefined;
async function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (error) {
        log(`cleanup: ${String(error)}`);
      }
    }
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping servers, dropping the bench database`);
    void cleanup().then(() => process.exit(130));
  });
}

/** Reference measurements, shared by both backends (measured once, interleaved with the first). */
const referenceCache = new Map<string, Measured | { unavailable: string }>();

async function measure(scenario: Scenario, ctx: Context, server: Managed): Promise<ScenarioResult> {
  const multiplier = scenario.multiplier(cfg);
  const duration = ctx.backend === 'embedded' ? cfg.embeddedDuration : cfg.duration;
  const result: ScenarioResult = {
    id: scenario.id,
    title: scenario.title,
    unit: scenario.unit,
    kind: scenario.kind,
    connections: scenario.connections(cfg),
    target: scenario.target,
    sensorcloud: { unavailable: 'not run' },
    reference: undefined,
    ratio: undefined,
    met: undefined,
  };
  const sc: Prepared = await scenario.sensorcloud(ctx).catch((error: unknown) => ({ unavailable: String(error) }));
  let ref: Prepared | undefined;
  const referenceKey = scenario.reference?.perBackend ? `${scenario.id}:${ctx.backend}` : scenario.id;
  const cached = scenario.reference ? referenceCache.get(referenceKey) : undefined;
  if (scenario.reference && !cached && !cfg.cpuProfile)
    ref = await scenario.reference.prepare(ctx).catch((error: unknown) => ({ unavailable: String(error) }));
  const scRunner = typeof sc === 'function' ? sc : undefined;
  const refRunner = typeof ref === 'function' ? ref : undefined;
  if (!scRunner) log(`  sensorcloud: unavailable — ${(sc as { unavailable: string }).unavailable}`);
  if (ref && !refRunner) log(`  ${scenario.reference?.name}: unavailable — ${(ref as { unavailable: string }).unavailable}`);

  const rss = sampleRss(server.pid);
  const scRuns: LoadResult[] = [];
  const refRuns: LoadResult[] = [];
  const database = ctx.databaseUrl ? new URL(ctx.databaseUrl).pathname.slice(1) : undefined;
  const run = async (who: string, runner: Runner, d: number, into: LoadResult[] | undefined, serverPid: number | undefined) => {
    const meter = await cpuMeter(serverPid, database);
    const r = await runner(d);
    r.cpu = await meter.stop(r.cpuSeconds ?? 0, r.postgresCpuSeconds ?? 0);
    into?.push(r);
    const failures = r.non2xx + r.errors + r.timeouts;
    const c = r.cpu;
    log(
      `  ${who.padEnd(14)} ${into ? 'run   ' : 'warmup'} ${fmtRate(r.rps * multiplier, scenario.unit).padStart(18)}  p50 ${fmtMs(r.latency.p50).padStart(6)} ms  p99 ${fmtMs(r.latency.p99).padStart(6)} ms` +
        `  cores: server ${c.server.toFixed(2)} pg ${c.postgres.toFixed(2)} load ${c.load.toFixed(2)} other ${c.other.toFixed(2)}` +
        (failures ? `  (${failures} failed: ${JSON.stringify(r.statuses)})` : ''),
    );
  };
  const refServer = scenario.reference?.serverPid?.(ctx);
  const refPid = refServer === 'sensorcloud' ? server.pid : refServer;
  try {
    // Warm-ups (discarded), then the measured runs alternating, so drift on this shared machine
    // hits both sides alike.
    if (scRunner && cfg.warmup > 0) await run('sensorcloud', scRunner, cfg.warmup, undefined, server.pid);
    if (refRunner && cfg.warmup > 0) await run(scenario.reference!.name, refRunner, cfg.warmup, undefined, refPid);
    for (let i = 0; i < cfg.runs; i++) {
      if (scRunner) await run('sensorcloud', scRunner, duration, scRuns, server.pid);
      if (refRunner) await run(scenario.reference!.name, refRunner, cfg.duration, refRuns, refPid);
    }
  } finally {
    const memory = await rss.stop();
    if (scRunner)
      result.sensorcloud = { name: 'sensorcloud', summary: summarize(scRuns, multiplier), runs: scRuns, rssPeakMiB: memory.max };
    else result.sensorcloud = sc as { unavailable: string };
  }
  if (scenario.reference) {
    if (refRunner)
      referenceCache.set(referenceKey, { name: scenario.reference.name, summary: summarize(refRuns, multiplier), runs: refRuns });
    else if (ref && !cached) referenceCache.set(referenceKey, ref as { unavailable: string });
    result.reference = referenceCache.get(referenceKey);
    if (result.reference && 'unavailable' in result.reference && ctx.backend === 'embedded' && scenario.id === 'ingest') {
      result.reference = { unavailable: 'PostgreSQL only' };
    }
  }
  if (isMeasured(result.sensorcloud)) {
    const refSummary = isMeasured(result.reference) ? result.reference.summary : undefined;
    if (refSummary && refSummary.rate > 0) result.ratio = result.sensorcloud.summary.rate / refSummary.rate;
    result.met = scenario.check(result.sensorcloud.summary, refSummary);
  }
  return result;
}

async function runBackend(backend: 'postgres' | 'embedded', refs: Context['refs']): Promise<BackendReport> {
  log(`=== ${backend} ===`);
  const backendCleanups: (() => Promise<void>)[] = [];
  const defer = (fn: () => Promise<void>) => {
    backendCleanups.push(fn);
    cleanups.push(fn);
  };
  const release = async () => {
    for (const fn of backendCleanups.splice(0).reverse()) {
      const i = cleanups.indexOf(fn);
      if (i >= 0) cleanups.splice(i, 1);
      await fn().catch((error: unknown) => log(`cleanup: ${String(error)}`));
    }
  };
  try {
    let databaseUrl: string | undefined;
    let dataDir: string | undefined;
    let database: string;
    if (backend === 'postgres') {
      const name = `sensorcloud_bench_${stamp.replace(/[^0-9]/g, '').slice(0, 14)}_${process.pid}`;
      databaseUrl = await createPgDatabase(cfg.postgresUrl, name);
      database = databaseUrl.replace(/\/\/[^@]*@/, '//');
      log(`created database ${name}`);
      if (!cfg.keepDatabase)
        defer(async () => {
          await releaseSqlAccessLogin(databaseUrl!);
          await dropPgDatabase(cfg.postgresUrl, name);
          log(`dropped database ${name}`);
        });
    } else {
      dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sensorcloud-bench-'));
      database = `PGlite in ${dataDir}`;
      defer(async () => fs.rmSync(dataDir!, { recursive: true, force: true }));
    }
    const provisionFile = path.join(runDir, 'bench-provisioning.yaml');
    fs.writeFileSync(provisionFile, provisioningYaml());
    const readings = backend === 'postgres' ? cfg.readings : cfg.embeddedReadings;
    const prepared = await prepareDatabase({
      databaseUrl,
      dataDir,
      provisionFile,
      readings,
      sensors: cfg.sensors,
      log: (m) => log(`  ${m}`),
    });
    const seed = prepared.seed;
    if (seed.status === 'seeded') {
      log(
        `  seeded ${seed.readings.toLocaleString('en-US')} readings in ${seed.seconds.toFixed(0)} s (${((seed.tableBytes ?? 0) / 2 ** 20).toFixed(0)} MiB with indexes)`,
      );
    } else {
      log(`  readings not seeded: ${seed.reason}`);
    }

    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const mqttPort = await freePort();
    const profiling = cfg.cpuProfile !== undefined;
    const cpuProfileDir = profiling ? path.join(runDir, `cpu-profile-${backend}`) : undefined;
    const launch = () =>
      startProcess({
        name: `sensorcloud-${backend}`,
        args: [...(cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`] : []), 'bin/sensorcloud.js', 'serve'],
        env: {
          NODE_ENV: 'production',
          PORT: String(port),
          HOST: '127.0.0.1',
          PUBLIC_URL: url,
          LOG_LEVEL: cfg.logLevel,
          SENSORCLOUD_PROVISION: provisionFile,
          DATA_DIR: dataDir ?? path.join(runDir, 'data-unused'),
          DATABASE_URL: databaseUrl ?? '',
          // Throughput is measured with the abuse ceilings off: every request comes from one address
          // and one client, which the per-IP and per-client limits exist to stop.
          OAUTH_RATE_LIMIT_IP: '0',
          OAUTH_RATE_LIMIT_CLIENT: '0',
          // The webhook scenarios deliver to a receiver on 127.0.0.1.
          WEBHOOK_ALLOW_PRIVATE: 'true',
          MQTT_PORT: String(mqttPort),
        },
        url,
        readyPath: '/healthz',
        logDir: runDir,
      });
    let server = await launch();
    defer(() => server.stop());
    log(`sensorcloud (${backend}) listening on ${url}, pid ${server.pid}, log ${path.relative(ROOT, server.logFile)}`);
    await sleep(2000);
    const idleMiB = await rssMiB(server.pid);

    const ctx: Context = {
      cfg,
      backend,
      url,
      tenant: prepared.tenant,
      seed,
      refs,
      mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
      databaseUrl,
      copy: databaseUrl
        ? await copyStatement(databaseUrl, prepared.tenant.organizationId).catch((error: unknown) => ({ unavailable: String(error) }))
        : undefined,
    };
    const scenarios: ScenarioResult[] = [];
    for (const scenario of [...SCENARIOS, ...REACTIVE_SCENARIOS, graphqlScenario, sqlAccessScenario, mqttScenario]) {
      if (cfg.only && !cfg.only.includes(scenario.id)) continue;
      log(`${scenario.title} [${backend}]`);
      let result = await measure(scenario, ctx, server);
      if (!server.alive()) {
        // Something outside the bench stopped the server (this host is shared): start it again on
        // the same database and measure the scenario once more, saying so in the results.
        const how = server.exitDescription();
        log(`  sensorcloud exited during the scenario (${how}); restarting it and measuring the scenario again`);
        server = await launch();
        await sleep(2000);
        result = await measure(scenario, ctx, server);
        result.note = `the server exited during a first attempt (${how}, not by the bench) and was restarted`;
      }
      scenarios.push(result);
    }
    await sleep(3000);
    const idleAfterLoadMiB = await rssMiB(server.pid);
    const peaks = scenarios
      .map((s) => (isMeasured(s.sensorcloud) ? (s.sensorcloud.rssPeakMiB ?? Number.NaN) : Number.NaN))
      .filter(Number.isFinite);
    await release();
    if (cpuProfileDir) {
      for (const file of fs.existsSync(cpuProfileDir) ? fs.readdirSync(cpuProfileDir).filter((f) => f.endsWith('.cpuprofile')) : []) {
        const summary = summarizeProfile(path.join(cpuProfileDir, file));
        fs.writeFileSync(path.join(cpuProfileDir, file.replace(/\.cpuprofile$/, '.summary.txt')), `${summary}\n`);
        process.stdout.write(`\n${summary}\n\n`);
      }
      log(`CPU profile(s) of the server: ${path.relative(ROOT, cpuProfileDir)}/`);
    }
    return {
      backend,
      database,
      seed,
      provisioning: prepared.provisioning,
      memory: { idleMiB, peakUnderLoadMiB: peaks.length ? Math.max(...peaks) : Number.NaN, idleAfterLoadMiB },
      scenarios,
      ...(cpuProfileDir && { cpuProfileDir: path.relative(ROOT, cpuProfileDir) }),
    };
  } catch (error) {
    await release();
    throw error;
  }
}

async function postgresVersion(): Promise<string> {
  const client = new pg.Client({ connectionString: cfg.postgresUrl });
  try {
    await client.connect();
    const r = await client.query<{ v: string; sb: string; fsync: string; sc: string }>(
      "select version() as v, current_setting('shared_buffers') as sb, current_setting('fsync') as fsync, current_setting('synchronous_commit') as sc",
    );
    const row = r.rows[0];
    return row ? `${row.v.split(' on ')[0]} (shared_buffers ${row.sb}, fsync ${row.fsync}, synchronous_commit ${row.sc})` : 'unknown';
  } catch (error) {
    return `unreachable: ${String(error)}`;
  } finally {
    await client.end().catch(() => {});
  }
}

async function main(): Promise<void> {
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    loadAverage: os.loadavg(),
    postgres: cfg.backends.includes('postgres') ? await postgresVersion() : undefined,
  };
  log(
    `sensorcloud bench — ${machine.cpus} × ${machine.cpuModel}, node ${machine.node}, load ${machine.loadAverage.map((l) => l.toFixed(2)).join(' ')}`,
  );
  log(
    `runs ${cfg.runs} × ${cfg.duration} s (embedded ${cfg.embeddedDuration} s), warm-up ${cfg.warmup} s, readings ${cfg.readings.toLocaleString('en-US')} (embedded ${cfg.embeddedReadings.toLocaleString('en-US')})${cfg.quick ? ', QUICK' : ''}`,
  );
  if (!cfg.skipBuild) {
    log('npm run build');
    try {
      await runCommand('npm', ['run', '--silent', 'build']);
    } catch (error) {
      // tsc still emits on type errors; a shared working tree may hold someone's half-done file.
      if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) throw error;
      log(`WARNING: ${String(error)}; benchmarking the JavaScript tsc emitted anyway`);
    }
  }

  // References that do not depend on the database run for the whole bench.
  const fastifyPort = await freePort();
  const fastify = await startProcess({
    name: 'ref-fastify',
    args: [...TSX, 'bench/refs/fastify.ts'],
    env: { PORT: String(fastifyPort) },
    url: `http://127.0.0.1:${fastifyPort}`,
    readyPath: '/healthz',
    logDir: runDir,
  });
  cleanups.push(() => fastify.stop());
  const oidcPort = await freePort();
  const oidcClient = { id: 'bench-client', secret: 'bench-client-secret-4f0c2a9e7d1b6c3a8e5f' };
  const oidc = await startProcess({
    name: 'ref-oidc-provider',
    args: [...TSX, 'bench/refs/oidc.ts'],
    env: { PORT: String(oidcPort), OIDC_CLIENT_ID: oidcClient.id, OIDC_CLIENT_SECRET: oidcClient.secret },
    url: `http://127.0.0.1:${oidcPort}`,
    readyPath: '/.well-known/openid-configuration',
    logDir: runDir,
  });
  cleanups.push(() => oidc.stop());
  const oidcVersion = (
    JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules/oidc-provider/package.json'), 'utf8')) as { version: string }
  ).version;
  const aedesPort = await freePort();
  const aedesHealthPort = await freePort();
  const aedes = await startProcess({
    name: 'ref-aedes',
    args: [...TSX, 'bench/refs/aedes.ts'],
    env: { PORT: String(aedesHealthPort), MQTT_PORT: String(aedesPort) },
    url: `http://127.0.0.1:${aedesHealthPort}`,
    readyPath: '/',
    logDir: runDir,
  });
  cleanups.push(() => aedes.stop());
  const aedesMqttUrl = `mqtt://127.0.0.1:${aedesPort}`;
  log(`references: bare Fastify on ${fastify.url}, oidc-provider ${oidcVersion} on ${oidc.url}, bare aedes on ${aedesMqttUrl}`);
  const refs = {
    fastifyUrl: fastify.url,
    fastifyPid: fastify.pid,
    oidcUrl: oidc.url,
    oidcPid: oidc.pid,
    oidcClient,
    aedesMqttUrl,
    aedesPid: aedes.pid,
  };

  const backends: BackendReport[] = [];
  for (const backend of cfg.backends) backends.push(await runBackend(backend, refs));
  await cleanup();

  const finished = Date.now();
  const report = {
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date(finished).toISOString(),
    seconds: (finished - started) / 1000,
    machine,
    config: cfg,
    oidcProviderVersion: oidcVersion,
    backends,
  };
  const jsonFile = path.join(resultsDir, `${stamp}.json`);
  fs.writeFileSync(jsonFile, JSON.stringify(report, null, 2));

  let markdown = '';
  for (const b of backends) {
    const seed = b.seed as { status: string; readings: number };
    const title = `${b.backend === 'postgres' ? 'PostgreSQL' : 'embedded (PGlite)'} — readings table: ${seed.status === 'seeded' ? seed.readings.toLocaleString('en-US') : 'not seeded'}; server RSS idle ${b.memory.idleMiB.toFixed(0)} MiB, peak under load ${b.memory.peakUnderLoadMiB.toFixed(0)} MiB, idle after ${b.memory.idleAfterLoadMiB.toFixed(0)} MiB`;
    const body = rows(b.scenarios);
    const cpu = cpuRows(b.scenarios);
    process.stdout.write(
      `\n${title}${b.backend === 'embedded' ? ' (for information; references from the PostgreSQL pass, but scenario 8 measures its own)' : ''}\n${textTable(HEADER, body)}\n`,
    );
    process.stdout.write(
      `\nwhere the CPU went (cores of ${machine.cpus}, median of runs; ingest per 1,000 readings)\n${textTable(CPU_HEADER, cpu)}\n`,
    );
    markdown += `\n**${title}**\n\n${markdownTable(HEADER, body)}\n\nCPU (cores of ${machine.cpus}, median of runs; "per op" is per request, per 1,000 readings for ingest):\n\n${markdownTable(CPU_HEADER, cpu)}\n`;
  }
  fs.writeFileSync(path.join(runDir, 'table.md'), markdown.trimStart());
  process.stdout.write(
    `\nfinished in ${((finished - started) / 1000).toFixed(0)} s — ${path.relative(ROOT, jsonFile)}, ${path.relative(ROOT, path.join(runDir, 'table.md'))}\n`,
  );
}

main().catch(async (error: unknown) => {
  log(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  await cleanup();
  process.exit(1);
});
