/**
 * One SQL query run back to back over one connection for DURATION seconds, timed per execution:
 * the load of the SQL-access scenario (bench/sql-access.ts), as the reporting login through the
 * views and, for the reference, as the owner on the base tables. Prints one JSON line (a
 * LoadResult; rps counts queries).
 *
 * Input (env): DATABASE_URL (with the login's password), QUERY, PARAMS (JSON array), DURATION.
 */
import pg from 'pg';
import { directLoadResult } from '../lib/stats.js';

const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
await client.connect();
const query = process.env.QUERY ?? '';
const params = JSON.parse(process.env.PARAMS ?? '[]') as unknown[];
const durationMs = Number(process.env.DURATION ?? '5') * 1000;
const latencies: number[] = [];
let failures = 0;
const cpuStart = process.cpuUsage();
const started = performance.now();
// At least one execution, however long the run is.
do {
  const t0 = performance.now();
  try {
    await client.query(query, params);
    latencies.push(performance.now() - t0);
  } catch (error) {
    failures++;
    process.stderr.write(`${String(error)}\n`);
  }
} while (performance.now() - started < durationMs);
const elapsed = (performance.now() - started) / 1000;
await client.end();
process.stdout.write(`${JSON.stringify(directLoadResult(latencies, failures, elapsed, process.cpuUsage(cpuStart)))}\n`);
