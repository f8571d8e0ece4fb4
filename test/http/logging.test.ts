import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestId, safeUrl } from '../../src/http/logging.js';
import { createLogger } from '../../src/server/server.js';
import { rawRequest } from '../support/http.js';
import { type TestServer, startTestServer } from '../support/server.js';

describe('log helpers', () => {
  it('safeUrl keeps the path and the names of query parameters, never their values', () => {
    expect(safeUrl('/oauth/token?client_secret=abc&code=xyz&code=2')).toBe('/oauth/token?client_secret=…&code=…');
    expect(safeUrl('/healthz')).toBe('/healthz');
    expect(safeUrl('/a?')).toBe('/a');
  });

  it('requestId honours a sane X-Request-Id and replaces anything else', () => {
    const id = (value?: string | string[]) => requestId({ headers: value === undefined ? {} : { 'x-request-id': value } } as never);
    expect(id('abc-123')).toBe('abc-123');
    expect(id('a'.repeat(128))).toBe('a'.repeat(128));
    for (const bad of [undefined, '', 'a'.repeat(129), 'two words', 'new\nline', 'é', ['a', 'b']]) expect(id(bad)).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('request logs', () => {
  const lines: string[] = [];
  let server: TestServer;
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    server = await startTestServer({ logger: createLogger({ logLevel: 'info' }, sink) });
  });
  afterAll(async () => {
    await server?.stop();
  });
  const entries = () => lines.map((l) => JSON.parse(l) as Record<string, any>);

  it('carry the request id of the response, and never a secret', async () => {
    const response = await rawRequest(server.url, {
      path: '/healthz?client_secret=query-s3cr3t&external_authentication_token=ext-s3cr3t',
      headers: { authorization: 'Bearer header-s3cr3t', cookie: 'sid=cookie-s3cr3t', 'solution-key': 'solution-s3cr3t', 'x-request-id': 'log-trace-1' },
    });
    expect(response.status).toBe(200);
    await rawRequest(server.url, {
      method: 'POST',
      path: '/setup',
      headers: { 'content-type': 'application/json', 'x-request-id': 'log-trace-2' },
      body: JSON.stringify({ token: 'token-s3cr3t', organization_name: 'A', organization_slug: 'a', email: 'a@a.test', password: 'password-s3cr3t' }),
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
