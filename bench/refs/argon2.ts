/**
 * Reference: raw argon2id verifications per second with the project's parameters (ARGON2_PARAMS):
 * @node-rs/argon2's async verify on the libuv thread pool, CONCURRENCY verifications in flight.
 * The bench sets UV_THREADPOOL_SIZE to the number of cores, raw argon2id's best on this machine
 * and the server's own arrangement (one hashing thread per core). No HTTP, no database: the
 * ceiling of the password grant. Prints one JSON line (a LoadResult).
 */
import { hash, verify } from '@node-rs/argon2';
import { ARGON2_PARAMS } from '../../src/security/passwords.js';
import type { LoadResult } from '../lib/load-types.js';
import { directLoadResult } from '../lib/stats.js';

const duration = Number(process.env.DURATION ?? 5);
const concurrency = Number(process.env.CONCURRENCY ?? 8);
const password = 'Bench-password-0001';
const stored = await hash(password, ARGON2_PARAMS);

const latencies: number[] = [];
let failures = 0;
const cpu0 = process.cpuUsage();
const started = performance.now();
const deadline = started + duration * 1000;
async function worker(): Promise<void> {
  while (performance.now() < deadline) {
    const t0 = performance.now();
    const ok = await verify(stored, password);
    if (ok) latencies.push(performance.now() - t0);
    else failures++;
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
const elapsed = (performance.now() - started) / 1000;
const cpuUsed = process.cpuUsage(cpu0);
const result: LoadResult = directLoadResult(latencies, failures, elapsed, cpuUsed);
process.stdout.write(`${JSON.stringify(result)}\n`);
