#!/usr/bin/env node
/**
 * How long `npm start` takes to serve, and how much memory the server holds, on each backend.
 *
 *   node scripts/measure-start.mjs [--runs=3] [--idle=10] [--backends=embedded,postgres]
 *                                  [--postgres=postgres://postgres@127.0.0.1:5432] [--command=npm start]
 *
 * One run of a backend is two starts of the real `npm start` command (prestart included) in this
 * checkout: a first start on a new database (embedded: DATA_DIR in a new temporary directory;
 * postgres: DATABASE_URL to a new database, created and dropped here), then a second start on the
 * same one. For each start it reports:
 *
 * - ready: seconds from spawning `npm start` to the first `GET /readyz` answered 200 (polled every
 *   50 ms; the launcher, the prestart step, the database opening and migrations all count);
 * - idle RSS: the summed RSS of the whole process tree (npm, its shell, the server and anything
 *   they spawn) `--idle` seconds after ready, with no request in between;
 * - peak tree / peak server: the largest summed RSS of the tree, and of the server process alone
 *   (the node running bin/sensorcloud.js), sampled from /proc every 100 ms from spawn to the end of
 *   the idle period.
 *
 * The server is stopped with SIGTERM to its process group after each start. The table printed at
 * the end holds the median of the runs. Linux only (reads /proc).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function parseArgs(argv) {
  const options = {
    runs: 3,
    idle: 10,
    backends: ['embedded', 'postgres'],
    postgres: process.env.MEASURE_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432',
    command: 'npm start',
  };
  for (const arg of argv) {
    const match = /^--([a-z]+)=(.*)$/.exec(arg);
    if (!match) throw new Error(`unknown argument "${arg}" (see the comment at the top of ${path.basename(import.meta.url)})`);
    const [, name, value] = match;
    if (name === 'runs' || name === 'idle') {
      const n = Number(value);
      if (!Number.isInteger(n) || n < (name === 'runs' ? 1 : 0)) throw new Error(`--${name} must be an integer, got "${value}"`);
      options[name] = n;
    } else if (name === 'backends') {
      options.backends = value.split(',').filter(Boolean);
      for (const b of options.backends) if (b !== 'embedded' && b !== 'postgres') throw new Error(`unknown backend "${b}"`);
    } else if (name === 'postgres' || name === 'command') {
      options[name] = value;
    } else {
      throw new Error(`unknown option --${name}`);
    }
  }
  return options;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function readyzStatus(port) {
  return new Promise((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, path: '/readyz', timeout: 1000 }, (response) => {
      response.resume();
      resolve(response.statusCode);
    });
    request.once('timeout', () => request.destroy());
    request.once('error', () => resolve(0));
  });
}

// --- /proc sampling -----------------------------------------------------------------------------

/** Every process as { pid, ppid, rssKiB, cmdline }. */
function processTable() {
  const table = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = fs.readFileSync(`/proc/${entry}/status`, 'utf8');
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]);
      const rssKiB = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      table.push({ pid: Number(entry), ppid, rssKiB });
    } catch {
      // The process ended between readdir and read.
    }
  }
  return table;
}

function cmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

const serverCommand = new Map();

/** Summed RSS (MiB) of the tree rooted at `rootPid`, and of the server process in it. */
function sampleTree(rootPid) {
  const table = processTable();
  const children = new Map();
  for (const p of table) {
    if (!children.has(p.ppid)) children.set(p.ppid, []);
    children.get(p.ppid).push(p);
  }
  let tree = 0;
  let server = 0;
  const stack = table.filter((p) => p.pid === rootPid);
  while (stack.length > 0) {
    const p = stack.pop();
    tree += p.rssKiB;
    if (!serverCommand.has(p.pid)) serverCommand.set(p.pid, cmdline(p.pid).includes('bin/sensorcloud.js'));
    if (serverCommand.get(p.pid)) server += p.rssKiB;
    stack.push(...(children.get(p.pid) ?? []));
  }
  return { tree: tree / 1024, server: server / 1024 };
}

// --- one start -------------------------------------------------------------------------------

async function startOnce({ env, idle, command, label }) {
  const port = await freePort();
  const [file, ...args] = command.split(' ');
  const started = performance.now();
  const child = spawn(file, args, {
    cwd: root,
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: SIGTERM reaches npm, the shell and the server
  });
  let output = '';
  const keep = (chunk) => {
    output = (output + chunk).slice(-8000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  const exit = new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    }),
  );

  let peakTree = 0;
  let peakServer = 0;
  const sample = () => {
    const s = sampleTree(child.pid);
    peakTree = Math.max(peakTree, s.tree);
    peakServer = Math.max(peakServer, s.server);
    return s;
  };
  const sampler = setInterval(sample, 100);
  try {
    let ready;
    while (ready === undefined) {
      if (exited) throw new Error(`${label}: exited (${JSON.stringify(exited)}) before /readyz answered 200:\n${output}`);
      if ((await readyzStatus(port)) === 200) ready = (performance.now() - started) / 1000;
      else await sleep(50);
      if (performance.now() - started > 300_000) throw new Error(`${label}: /readyz not 200 after 300 s:\n${output}`);
    }
    await sleep(idle * 1000);
    const idleSample = sample();
    return { ready, idleTree: idleSample.tree, idleServer: idleSample.server, peakTree, peakServer };
  } finally {
    clearInterval(sampler);
    if (!exited) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {}
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {}
      }, 20_000);
      await exit;
      clearTimeout(timer);
    }
    serverCommand.clear();
  }
}

// --- backends --------------------------------------------------------------------------------

async function withEmbedded(fn) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sensorcloud-measure-'));
  try {
    return await fn({ DATA_DIR: dir });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function withPostgres(adminUrl, fn) {
  const { default: pg } = await import('pg');
  const name = `sensorcloud_measure_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: `${adminUrl.replace(/\/$/, '')}/postgres` });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
    try {
      return await fn({ DATABASE_URL: `${adminUrl.replace(/\/$/, '')}/${name}` });
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  } finally {
    await admin.end();
  }
}

// --- report ----------------------------------------------------------------------------------

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

function formatRow(cells, widths) {
  return `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
}

function printTable(rows, options) {
  const header = [
    'backend',
    'start',
    'ready (s)',
    `idle tree (MiB, ${options.idle} s)`,
    'idle server (MiB)',
    'peak tree (MiB)',
    'peak server (MiB)',
  ];
  const body = rows.map((r) => [
    r.backend,
    r.start,
    r.ready.toFixed(1),
    Math.round(r.idleTree),
    Math.round(r.idleServer),
    Math.round(r.peakTree),
    Math.round(r.peakServer),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => String(b[i]).length)));
  console.log(`\nmedian of ${options.runs} run(s), \`${options.command}\` in ${root}, node ${process.version}, ${os.cpus().length} CPUs`);
  console.log(formatRow(header, widths));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const b of body) console.log(formatRow(b, widths));
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const results = new Map(); // "backend/start" -> list of measurements
  for (let run = 1; run <= options.runs; run++) {
    for (const backend of options.backends) {
      const within = backend === 'embedded' ? withEmbedded : (fn) => withPostgres(options.postgres, fn);
      await within(async (env) => {
        for (const start of ['first', 'second']) {
          const label = `${backend} ${start} start, run ${run}/${options.runs}`;
          const m = await startOnce({ env: { ...env, LOG_LEVEL: 'info' }, idle: options.idle, command: options.command, label });
          console.log(
            `${label}: ready ${m.ready.toFixed(2)} s, idle tree ${m.idleTree.toFixed(0)} MiB (server ${m.idleServer.toFixed(0)}), ` +
              `peak tree ${m.peakTree.toFixed(0)} MiB, peak server ${m.peakServer.toFixed(0)} MiB`,
          );
          const key = `${backend}/${start}`;
          if (!results.has(key)) results.set(key, []);
          results.get(key).push(m);
        }
      });
    }
  }
  const rows = [...results].map(([key, list]) => {
    const [backend, start] = key.split('/');
    const pick = (field) => median(list.map((m) => m[field]));
    return {
      backend,
      start,
      ready: pick('ready'),
      idleTree: pick('idleTree'),
      idleServer: pick('idleServer'),
      peakTree: pick('peakTree'),
      peakServer: pick('peakServer'),
    };
  });
  printTable(rows, options);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
