import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import type { FastifyRequest } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestLogger, formatAccessLine, requestId, requestLoggerFactory, requestSerializer, safeUrl } from '../../src/http/logging.js';
import { createLogger } from '../../src/server/server.js';
import { rawRequest } from '../support/http.js';
import { type TestServer, startTestServer } from '../support/server.js';

describe('log helpers', () => {
  it('safeUrl keeps the path and the names of query parameters, never their values', () => {
    expect(safeUrl('/oauth/token?client_secret=abc&code=xyz&code=2')).toBe('/oauth/token?client_secret=…&code=…');
    expect(safeUrl('/healthz')).toBe('/healthz');
    expect(safeUrl('/a?')).toBe('/a');
    expect(safeUrl('/a?b=1?c=2')).toBe('/a?b=…');
  });

  it('requestId honours a sane X-Request-Id and replaces anything else', () => {
    const id = (value?: string | string[]) => requestId({ headers: value === undefined ? {} : { 'x-request-id': value } } as never);
    expect(id('abc-123')).toBe('abc-123');
    expect(id('a'.repeat(128))).toBe('a'.repeat(128));
    for (const bad of [undefined, '', 'a'.repeat(129), 'two words', 'new\nline', 'é', ['a', 'b']])
      expect(id(bad)).toMatch(/^[0-9a-f-]{36}$/);
  });
});

function memorySink(lines: string[]): Writable {
  return new Writable({
    write(chunk, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
}

describe('RequestLogger (request.log)', () => {
  const lines: string[] = [];
  const root = createLogger({ logLevel: 'info' }, memorySink(lines));
  const written = () => lines.splice(0).map((l) => JSON.parse(l) as Record<string, any>);

  it("writes pino's call forms through the server logger with the request id", async () => {
    const log = new RequestLogger(root, 'req-1');
    log.info('plain message');
    log.warn({ scope: 'a b' }, 'with fields');
    log.error(new Error('boom'));
    log.error(new Error('cause'), 'with context');
    log.info('%s and %d', 'interpolated', 7);
    log.debug('below the level');
    log.child({ job: 'x' }).info('from a child');
    await new Promise((r) => setImmediate(r));
    const entries = written();
    expect(entries.map((e) => [e.reqId, e.msg])).toEqual([
      ['req-1', 'plain message'],
      ['req-1', 'with fields'],
      ['req-1', 'boom'],
      ['req-1', 'with context'],
      ['req-1', 'interpolated and 7'],
      ['req-1', 'from a child'],
    ]);
    expect(entries[1]).toMatchObject({ level: 40, scope: 'a b' });
    expect(entries[2]!.err).toMatchObject({ type: 'Error', message: 'boom' });
    expect(entries[3]!.err).toMatchObject({ message: 'cause' });
    expect(entries[5]).toMatchObject({ job: 'x' });
    expect(log.level).toBe('info');
  });

  it('keeps redaction: a credential header logged through it is censored', async () => {
    new RequestLogger(root, 'req-2').info({ res: { headers: { 'set-cookie': 'sid=s3cr3t' } } }, 'headers');
    await new Promise((r) => setImmediate(r));
    const [entry] = written();
    expect(entry!.res.headers['set-cookie']).toBe('[Redacted]');
  });

  it('is what Fastify gets per request, unless a route asks for a level of its own (a real child)', () => {
    expect(requestLoggerFactory(root, { reqId: 'r' }, {})).toBeInstanceOf(RequestLogger);
    const child = requestLoggerFactory(root, { reqId: 'r' }, { level: 'warn' });
    expect(child).not.toBeInstanceOf(RequestLogger);
    expect(child.level).toBe('warn');
  });
});

describe('the access line', () => {
  it("is byte for byte what pino writes for the same fields, whatever the request's strings", () => {
    const time = () => ',"time":1700000000000';
    let rendered = '';
    const logger = pino(
      { level: 'info', timestamp: time },
      {
        write: (line: string) => {
          rendered = line;
        },
      },
    );
    const bindings = (logger as unknown as Record<symbol, string>)[pino.symbols.chindingsSym]!;
    fc.assert(
      fc.property(
        fc.record({
          id: fc.string(),
          method: fc.constantFrom('GET', 'POST', 'DELETE'),
          url: fc.string({ unit: 'binary' }),
          ip: fc.option(fc.string(), { nil: undefined }),
        }),
        fc.integer({ min: 100, max: 599 }),
        fc.double({ min: 0, max: 1e6, noNaN: true }),
        (fields, statusCode, responseTime) => {
          const request = { ...fields, url: `/${fields.url}` } as unknown as FastifyRequest;
          logger.info({ reqId: request.id, req: requestSerializer(request), res: { statusCode }, responseTime }, 'request completed');
          expect(formatAccessLine({ time, bindings }, request, statusCode, responseTime)).toBe(rendered);
        },
      ),
    );
  });
});

describe('request logs', () => {
  const lines: string[] = [];
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ logger: createLogger({ logLevel: 'info' }, memorySink(lines)) });
  });
  afterAll(async () => {
    await server?.stop();
  });
  const entries = () => lines.map((l) => JSON.parse(l) as Record<string, any>);

  it('carry the request id of the response, and never a secret', async () => {
    const response = await rawRequest(server.url, {
      path: '/healthz?client_secret=query-s3cr3t&external_authentication_token=ext-s3cr3t',
      headers: {
        authorization: 'Bearer header-s3cr3t',
        cookie: 'sid=cookie-s3cr3t',
        'solution-key': 'solution-s3cr3t',
        'x-request-id': 'log-trace-1',
      },
    });
    expect(response.status).toBe(200);
    await rawRequest(server.url, {
      method: 'POST',
      path: '/setup',
      headers: { 'content-type': 'application/json', 'x-request-id': 'log-trace-2' },
      body: JSON.stringify({
        token: 'token-s3cr3t',
        organization_name: 'A',
        organization_slug: 'a',
        email: 'a@a.test',
        password: 'password-s3cr3t',
      }),
    });
    await new Promise((r) => setTimeout(r, 50));

    const mine = entries().filter((e) => e.reqId === 'log-trace-1');
    expect(mine.map((e) => e.msg)).toEqual(['request completed']);
    expect(mine[0]!.req).toMatchObject({ method: 'GET', url: '/healthz?client_secret=…&external_authentication_token=…' });
    expect(mine[0]!.res).toMatchObject({ statusCode: 200 });
    expect(entries().some((e) => e.reqId === 'log-trace-2')).toBe(true);
    expect(lines.join('\n')).not.toMatch(/s3cr3t/);
  });
});

describe('request logs below info', () => {
  it('are not written when LOG_LEVEL is above info (access lines follow the server level)', async () => {
    const lines: string[] = [];
    const server = await startTestServer({ logger: createLogger({ logLevel: 'warn' }, memorySink(lines)) });
    try {
      expect((await rawRequest(server.url, { path: '/healthz' })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 50));
      expect(lines.filter((l) => l.includes('request completed'))).toEqual([]);
    } finally {
      await server.stop();
    }
  });
});

describe('the server log destination (standard output, batched)', () => {
  /** The lines the child wrote: when it exits, or `waitMs` after it says it has logged them. */
  const run = (mode: string, count: number, waitMs?: number) =>
    new Promise<number[]>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/log-lines.ts'], {
        env: { ...process.env, MODE: mode, COUNT: String(count) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
      const lines = () =>
        out
          .split('\n')
          .filter(Boolean)
          .map((l) => (JSON.parse(l) as { line: number }).line);
      if (waitMs !== undefined) child.stderr.once('data', () => setTimeout(() => resolve(lines()), waitMs));
      child.once('exit', () => resolve(lines()));
      child.once('error', reject);
    });
  const upTo = (n: number) => Array.from({ length: n }, (_, i) => i);

  it('writes every line, in order, when the process ends by itself or by process.exit', async () => {
    expect(await run('natural', 1000)).toEqual(upTo(1000));
    expect(await run('exit', 1000)).toEqual(upTo(1000));
    expect(await run('exit', 5)).toEqual(upTo(5));
  });

  it('writes a few pending lines within the flush interval while the process keeps running', async () => {
    expect(await run('linger', 5, 1500)).toEqual(upTo(5));
  });
});
