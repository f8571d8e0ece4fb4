/**
 * Reference: a raw `COPY … FROM STDIN` of the same readings into the same PostgreSQL table the
 * server writes, in the same batches (BATCH rows per COPY, each its own committed transaction,
 * so as durable as an acknowledged ingest) with CONNECTIONS batches in flight, for DURATION
 * seconds. This is what a hand-written loader that skips HTTP, JSON, authentication and
 * validation achieves. Prints one JSON line (a LoadResult; rps counts batches, ok batches).
 *
 * Input (env): DATABASE_URL, SPEC = JSON { copySql, row (tab-separated, %SENSOR% %TS% %VALUE%),
 * sensors, batch, startMs, stepMs, connections, duration }.
 */
import { readFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { LoadResult } from '../lib/load-types.js';
import { directLoadResult } from '../lib/stats.js';

interface CopySpec {
  copySql: string;
  row: string;
  sensors: string[];
  batch: number;
  startMs: number;
  stepMs: number;
  connections: number;
  duration: number;
}

const spec = JSON.parse(process.env.SPEC ?? '{}') as CopySpec;
const perBatchTimes = Math.ceil(spec.batch / spec.sensors.length);
let nextBatch = 0;

function batchText(batchNo: number): string {
  const t0 = spec.startMs + batchNo * perBatchTimes * spec.stepMs;
  let out = '';
  let n = 0;
  for (let t = 0; t < perBatchTimes && n < spec.batch; t++) {
    const ts = new Date(t0 + t * spec.stepMs).toISOString();
    for (let s = 0; s < spec.sensors.length && n < spec.batch; s++, n++) {
      const value = Math.round((20 + Math.sin((batchNo + t + s) / 50) * 5) * 100) / 100;
      out += `${spec.row.replace('%SENSOR%', spec.sensors[s]!).replace('%TS%', ts).replaceAll('%VALUE%', String(value))}\n`;
    }
  }
  return out;
}

const clients = await Promise.all(
  Array.from({ length: spec.connections }, async () => {
    const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await client.connect();
    return client;
  }),
);

/** The PostgreSQL backends of these connections run on this machine: their CPU is read from /proc. */
async function backendCpu(): Promise<number> {
  let total = 0;
  for (const pid of backendPids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // not visible (remote server): reported as 0
    }
  }
  return total;
}
const backendPids = await Promise.all(
  clients.map(async (c) => (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid),
);
const pg0 = await backendCpu();

const latencies: number[] = [];
let failures = 0;
let firstError: string | undefined;
const cpu0 = process.cpuUsage();
const started = performance.now();
const deadline = started + spec.duration * 1000;
await Promise.all(
  clients.map(async (client) => {
    while (performance.now() < deadline) {
      const text = batchText(nextBatch++);
      const t0 = performance.now();
      try {
        await pipeline(Readable.from([text]), client.query(copyFrom(spec.copySql)));
        latencies.push(performance.now() - t0);
      } catch (error) {
        failures++;
        firstError ??= String(error);
        if (failures > 20) break;
      }
    }
  }),
);
const elapsed = (performance.now() - started) / 1000;
const cpuUsed = process.cpuUsage(cpu0);
const postgresCpuSeconds = (await backendCpu()) - pg0;
await Promise.all(clients.map((c) => c.end()));
if (firstError) console.error(firstError);
const result: LoadResult = { ...directLoadResult(latencies, failures, elapsed, cpuUsed), postgresCpuSeconds };
process.stdout.write(`${JSON.stringify(result)}\n`);
