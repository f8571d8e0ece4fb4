import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.js';
import { captureOutput, withEnv } from './process.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI in this process, as `sensorcloud ARGS` would, with `env` laid over the process
 * environment for the duration, and captures what it writes.
 */
export async function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  const { result: code, stdout, stderr } = await withEnv(env, () => captureOutput(() => main(args)));
  return { code, stdout, stderr };
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ENTRY = fileURLToPath(new URL('./cli-entry.ts', import.meta.url));

export interface SpawnedCli {
  child: ReturnType<typeof spawn>;
  /** Everything written so far. */
  output(): { stdout: string; stderr: string };
  /** Resolves with the exit code (or the signal name) once the process ends. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when stdout matches. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
}

/** The line a server process prints once it listens, with its URL. */
export const LISTENING = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/;

/**
 * `sensorcloud serve ARGS` as a separate process on the PostgreSQL database `databaseUrl`, on a
 * free port of 127.0.0.1, logging at info (wait for LISTENING): nothing of this process's data
 * directory or provisioning settings, `env` on top.
 */
export function spawnServe(databaseUrl: string, args: string[] = [], env: Record<string, string | undefined> = {}): SpawnedCli {
  return spawnCli(['serve', ...args], {
    DATABASE_URL: databaseUrl,
    DATA_DIR: undefined,
    SENSORCLOUD_PROVISION: undefined,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    ...env,
  });
}

/** Runs the CLI as a separate process (`node --import tsx …`), for exit codes and signals. */
export function spawnCli(args: string[], env: Record<string, string | undefined> = {}): SpawnedCli {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[key];
    else childEnv[key] = value;
  }
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
    cwd: ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    for (const l of listeners) l();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      for (const l of listeners) l();
      resolve({ code, signal });
    });
  });
  return {
    child,
    output: () => ({ stdout, stderr }),
    exited,
    waitFor: (pattern, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(stdout);
          if (match) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve(match);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            listeners.delete(check);
            clearTimeout(timer);
            reject(new Error(`process ended before printing ${pattern}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out waiting for ${pattern}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
        }, timeoutMs);
        listeners.add(check);
        check();
      }),
  };
}
