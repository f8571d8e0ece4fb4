import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TSX = ['--import', 'tsx'];

/** A free TCP port on 127.0.0.1 (bound then released; the bench is the only one picking). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resident set size of a process, in MiB, from /proc/<pid>/status (VmRSS). */
export async function rssMiB(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Polls a process's RSS until stopped; `max` is the peak seen. */
export function sampleRss(pid: number, everyMs = 250): { stop(): Promise<{ max: number; mean: number }> } {
  const samples: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const v = await rssMiB(pid);
      if (Number.isFinite(v)) samples.push(v);
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return {
        max: samples.length ? Math.max(...samples) : Number.NaN,
        mean: samples.length ? samples.reduce((a, b) => a + b, 0) / samples.length : Number.NaN,
      };
    },
  };
}

export interface Managed {
  name: string;
  child: ChildProcess;
  pid: number;
  url: string;
  logFile: string;
  /** False once the process has exited (whoever stopped it). */
  alive(): boolean;
  /** How it exited, when it did: exit code or signal. */
  exitDescription(): string | undefined;
  stop(): Promise<void>;
}

export interface StartOptions {
  name: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Base URL the process will serve (for readiness and clients). */
  url: string;
  /** Path polled until it answers (any status below 500). */
  readyPath: string;
  logDir: string;
  timeoutMs?: number;
}

/** Starts `node ARGS` with stdout/stderr to a log file and waits until it answers HTTP. */
export async function startProcess(options: StartOptions): Promise<Managed> {
  fs.mkdirSync(options.logDir, { recursive: true });
  const logFile = path.join(options.logDir, `${options.name}.log`);
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, options.args, {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', fd, fd],
  });
  fs.closeSync(fd);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
  });
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (;;) {
    if (exited) throw new Error(`${options.name} exited during start (${exited.code ?? exited.signal}); see ${logFile}:\n${tail(logFile)}`);
    try {
      const response = await fetch(options.url + options.readyPath, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.status < 500) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${options.name} did not become ready at ${options.url}${options.readyPath}; see ${logFile}:\n${tail(logFile)}`);
    }
    await sleep(100);
  }
  return {
    name: options.name,
    child,
    pid: child.pid!,
    url: options.url,
    logFile,
    alive: () => exited === undefined,
    exitDescription: () => (exited ? `exit ${exited.code ?? exited.signal}` : undefined),
    async stop() {
      if (exited) {
        trimLog(logFile);
        return;
      }
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exitPromise;
      clearTimeout(killer);
      trimLog(logFile);
    },
  };
}

/**
 * Keeps a server log readable after a run: at info level sensorcloud logs every request, which is
 * tens of megabytes per scenario; the start and the end are what anyone reads.
 */
export function trimLog(file: string, maxBytes = 4 * 1024 * 1024, keepLines = 500): void {
  try {
    if (fs.statSync(file).size <= maxBytes) return;
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    const kept = [
      ...lines.slice(0, keepLines),
      `… ${lines.length - 2 * keepLines} lines trimmed by the bench …`,
      ...lines.slice(-keepLines),
    ];
    fs.writeFileSync(file, kept.join('\n'));
  } catch {
    // best effort
  }
}

export function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Runs `node ARGS` to completion and returns its stdout; throws with stderr on failure. */
export async function runNode(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 600_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`node ${args.join(' ')} failed (${code ?? signal}):\n${err.slice(-4000)}`));
    });
  });
}

/** Runs a shell-free command (npm etc.) inheriting stdio. */
export async function runCommand(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} failed (${code ?? signal})`)),
    );
  });
}

const CLK_TCK = 100; // Linux USER_HZ

/** utime + stime of a process (all its threads), seconds; NaN when it is gone. */
async function processCpu(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** PostgreSQL backends serving one database (their title names it), pid → CPU seconds. */
async function postgresBackends(database: string): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  let pids: string[];
  try {
    pids = (await fs.promises.readdir('/proc')).filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  await Promise.all(
    pids.map(async (p) => {
      try {
        const cmdline = await readFile(`/proc/${p}/cmdline`, 'utf8');
        if (!cmdline.startsWith('postgres: ') || !cmdline.includes(` ${database} `)) return;
        const cpu = await processCpu(Number(p));
        if (Number.isFinite(cpu)) out.set(Number(p), cpu);
      } catch {
        // gone
      }
    }),
  );
  return out;
}

async function machineCpu(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
}

export interface CpuSplit {
  /** Cores in use on average over the run (1 = one core fully busy). */
  machine: number;
  /** The server under test (sensorcloud or the reference server), when there is one. */
  server: number;
  /** PostgreSQL backends of the bench database. */
  postgres: number;
  /** The load generator process (autocannon, COPY or argon2 client). */
  load: number;
  /** Everything else on the machine: other users of this shared host, PostgreSQL's own processes, the bench. */
  other: number;
}

/** CPU accounting around one run: call stop() with the load generator's own CPU seconds. */
export async function cpuMeter(
  serverPid: number | undefined,
  database: string | undefined,
): Promise<{ stop(loadCpuSeconds: number, ownPostgresCpuSeconds?: number): Promise<CpuSplit> }> {
  const t0 = performance.now();
  const m0 = await machineCpu();
  const s0 = serverPid ? await processCpu(serverPid) : 0;
  const p0 = database ? await postgresBackends(database) : new Map<number, number>();
  return {
    async stop(loadCpuSeconds, ownPostgresCpuSeconds = 0) {
      const wall = (performance.now() - t0) / 1000;
      const m1 = await machineCpu();
      const s1 = serverPid ? await processCpu(serverPid) : 0;
      const p1 = database ? await postgresBackends(database) : new Map<number, number>();
      let pg = 0;
      for (const [pid, cpu] of p1) pg += cpu - (p0.get(pid) ?? 0);
      const machine = (m1.busy - m0.busy) / wall;
      const server = serverPid ? Math.max(0, s1 - s0) / wall : 0;
      // Backends that exited before this snapshot are missing from `pg`; the COPY client reports its own.
      const postgres = (pg + ownPostgresCpuSeconds) / wall;
      const load = loadCpuSeconds / wall;
      return { machine, server, postgres, load, other: Math.max(0, machine - server - postgres - load) };
    },
  };
}
