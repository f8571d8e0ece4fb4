/**
 * What sensorcloud's request logging costs per request, apart from everything else: a minimal
 * Fastify route (with one onResponse hook, as the server's metrics add) served by a child
 * process under autocannon, in three variants:
 *
 *   none   Fastify without a logger
 *   noop   sensorcloud's logging (createLogger, RequestLogger, OneLineRequestLog), access
 *          lines formatted and handed to a destination that drops them
 *   file   the same, with createLogger's production destination (batched, synchronous) on a file
 *
 * Prints server CPU µs per request for each; "noop − none" is building and formatting the access
 * line, "file − noop" is the destination's. Run: node --import tsx bench/micro/request-log.ts
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { OneLineRequestLog, requestLoggerFactory } from '../../src/http/logging.js';
import { createLogger } from '../../src/server/server.js';

const VARIANTS = ['none', 'noop', 'file'] as const;
type Variant = (typeof VARIANTS)[number];
const DURATION = Number(process.env.DURATION ?? 5);
const ROUNDS = Number(process.env.ROUNDS ?? 3);

async function serve(variant: Variant): Promise<void> {
  const logging = {
    loggerInstance: createLogger({ logLevel: 'info' }, variant === 'noop' ? { write() {} } : undefined),
    logController: new OneLineRequestLog(),
    childLoggerFactory: requestLoggerFactory,
  };
  const app = Fastify(variant === 'none' ? { logger: false } : logging);
  app.addHook('onResponse', (_request, _reply, done) => done());
  app.get('/x', async () => ({ data: { id: 'f0e1d2c3-b4a5-4687-9788-a9b0c1d2e3f4', value: 21.5 } }));
  let started = process.cpuUsage();
  app.post('/cpu/reset', async () => {
    started = process.cpuUsage();
    return {};
  });
  app.get('/cpu', async () => {
    const used = process.cpuUsage(started);
    return { micros: used.user + used.system };
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  process.stderr.write(`port ${typeof address === 'object' && address ? address.port : 0}\n`);
}

async function measure(variant: Variant): Promise<number> {
  const logFile = path.join(os.tmpdir(), `request-log-${variant}-${process.pid}.log`);
  const out = fs.openSync(logFile, 'w');
  const child = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, 'serve', variant], { stdio: ['ignore', out, 'pipe'] });
  fs.closeSync(out);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stderr?.on('data', (chunk: Buffer) => {
        const match = /port (\d+)/.exec(chunk.toString());
        if (match) resolve(Number(match[1]));
      });
      child.once('exit', (code) => reject(new Error(`server exited (${code})`)));
    });
    const url = `http://127.0.0.1:${port}`;
    await autocannon({ url: `${url}/x`, connections: 10, duration: 1 });
    await fetch(`${url}/cpu/reset`, { method: 'POST' });
    const result = await autocannon({ url: `${url}/x`, connections: 10, duration: DURATION });
    const { micros } = (await (await fetch(`${url}/cpu`)).json()) as { micros: number };
    return micros / result.requests.total;
  } finally {
    child.kill();
    fs.rmSync(logFile, { force: true });
  }
}

if (process.argv[2] === 'serve') {
  await serve(process.argv[3] as Variant);
} else {
  const results: Record<Variant, number[]> = { none: [], noop: [], file: [] };
  for (let round = 0; round < ROUNDS; round++) for (const variant of VARIANTS) results[variant].push(await measure(variant));
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
  for (const variant of VARIANTS)
    console.log(
      `${variant.padEnd(5)} ${median(results[variant]).toFixed(1)} µs server CPU per request  (runs: ${results[variant].map((v) => v.toFixed(1)).join(', ')})`,
    );
  console.log(
    `formatting the access line ≈ ${(median(results.noop) - median(results.none)).toFixed(1)} µs, destination ≈ ${(median(results.file) - median(results.noop)).toFixed(1)} µs`,
  );
}
