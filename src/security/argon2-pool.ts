import { availableParallelism } from 'node:os';
import type { Options } from '@node-rs/argon2';
import { Piscina } from 'piscina';

/**
 * argon2id runs on a pool of its own threads, one per core, rather than on libuv's thread pool.
 *
 * libuv's pool has four threads whatever the machine: on two cores, four 19 MiB hashes at once
 * evict each other from the caches, and raw verifications fall from 218/s (two threads) to 167/s
 * (four) on the bench host. Hashing on libuv's pool also makes file and DNS work queue behind
 * 10 ms hashes. Here concurrent logins queue for a core instead, and libuv keeps its threads.
 *
 * Each thread holds two tasks (`concurrentTasksPerWorker`): the second waits in the thread's own
 * message queue and starts the moment the first ends, without a round trip through the main
 * thread's event loop. Idle threads are unreferenced and stop after IDLE_MS, so a CLI command
 * that hashed one secret still exits.
 */
export type Argon2Task =
  | { op: 'hash'; password: string; options: Options }
  | { op: 'hashRaw'; password: string; options: Options }
  | { op: 'verify'; hash: string; password: string };

const IDLE_MS = 30_000;

// Under vitest or tsx the sources run as TypeScript, and so must the worker.
const fromSource = import.meta.url.endsWith('.ts');

let pool: Piscina | undefined;

function argon2Pool(): Piscina {
  pool ??= new Piscina({
    filename: new URL(fromSource ? './argon2.worker.ts' : './argon2.worker.js', import.meta.url).href,
    minThreads: 0,
    maxThreads: availableParallelism(),
    concurrentTasksPerWorker: 2,
    idleTimeout: IDLE_MS,
    ...(fromSource && { execArgv: ['--import', 'tsx'] }),
  });
  return pool;
}

/** Threads the pool has started and still holds (for tests and diagnostics). */
export function argon2Threads(): number {
  return pool?.threads.length ?? 0;
}

export function runArgon2<Result extends string | boolean | Uint8Array>(task: Argon2Task): Promise<Result> {
  return argon2Pool().run(task) as Promise<Result>;
}
