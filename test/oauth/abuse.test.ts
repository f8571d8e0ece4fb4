import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/server/context.js';
import { basic } from './support/oauth-server.js';
import { injectApp } from './support/inject-app.js';

/** Rate limits per IP and per client, and the per-account / per-client failure back-off: 429 + Retry-After + RateLimit. */

let app: App;
let close: () => Promise<void>;
beforeAll(async () => {
  ({ app, close } = await injectApp({
    OAUTH_RATE_LIMIT_IP: '5',
    OAUTH_RATE_LIMIT_CLIENT: '3',
    OAUTH_RATE_LIMIT_WINDOW: '60',
    OAUTH_PASSWORD_FREE_FAILURES: '2',
    OAUTH_CLIENT_FREE_FAILURES: '2',
  }));
});
afterAll(async () => close?.());

const tokenRequest = (ip: string, form: Record<string, string>, authorization?: string) =>
  app.inject({
    method: 'POST',
    url: '/oauth/token',
    remoteAddress: ip,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization && { authorization }) },
    payload: new URLSearchParams(form).toString(),
  });

function expect429(response: Awaited<ReturnType<typeof tokenRequest>>) {
  expect(response.statusCode).toBe(429);
  expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  expect((response.json() as { error: string }).error).toBe('rate_limited');
}

describe('rate limits', () => {
  it('per client IP: the request over the limit is 429 with Retry-After and RateLimit headers', async () => {
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await tokenRequest('10.0.0.1', { grant_type: 'nope' });
      expect(res.statusCode).toBe(400);
      seen.push(String(res.headers['ratelimit-remaining']));
    }
    expect(seen).toEqual(['4', '3', '2', '1', '0']);
    const over = await tokenRequest('10.0.0.1', { grant_type: 'nope' });
    expect429(over);
    expect(over.headers['ratelimit-limit']).toBe('5');
    expect(over.headers['ratelimit-remaining']).toBe('0');
    expect(over.headers.ratelimit).toMatch(/^limit=5, remaining=0, reset=\d+$/);
    expect(over.headers['ratelimit-policy']).toBe('5;w=60');
    // Another address is unaffected.
    expect((await tokenRequest('10.0.0.2', { grant_type: 'nope' })).statusCode).toBe(400);
  });

  it('per client, across addresses', async () => {
    const m2m = basic('acme-m2m', 'acme-m2m-secret');
    for (let i = 0; i < 3; i++) expect((await tokenRequest(`10.1.0.${i}`, { grant_type: 'client_credentials' }, m2m)).statusCode).toBe(200);
    expect429(await tokenRequest('10.1.0.9', { grant_type: 'client_credentials' }, m2m));
    // Introspection (a resource server's high-volume read) is not limited per request.
    const introspect = await app.inject({
      method: 'POST',
      url: '/oauth/introspect',
      remoteAddress: '10.1.0.10',
      headers: { authorization: m2m, 'content-type': 'application/json' },
      payload: '{"token":"x"}',
    });
    expect(introspect.statusCode).toBe(200);
  });

  it('loopback callers are limited like any other address', async () => {
    for (let i = 0; i < 5; i++) expect((await tokenRequest('127.0.0.1', { grant_type: 'nope' })).statusCode).toBe(400);
    expect429(await tokenRequest('127.0.0.1', { grant_type: 'nope' }));
  });

  it('behind a trusted reverse proxy (TRUST_PROXY), each forwarded caller has its own budget', async () => {
    const proxied = await injectApp({ OAUTH_RATE_LIMIT_IP: '2', OAUTH_RATE_LIMIT_WINDOW: '60' }, { trustProxy: ['127.0.0.1'] });
    try {
      const viaProxy = (caller: string) =>
        proxied.app.inject({
          method: 'POST',
          url: '/oauth/token',
          remoteAddress: '127.0.0.1',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': caller },
          payload: 'grant_type=nope',
        });
      expect((await viaProxy('203.0.113.1')).statusCode).toBe(400);
      expect((await viaProxy('203.0.113.1')).statusCode).toBe(400);
      expect((await viaProxy('203.0.113.1')).statusCode).toBe(429);
      expect((await viaProxy('203.0.113.2')).statusCode).toBe(400);
    } finally {
      await proxied.close();
    }
  });
});

describe('failure back-off, per credential and address (the full story: test/abuse/abuse.e2e.test.ts)', () => {
  it('per account: after repeated wrong passwords from an address, even the right one waits there (checked before the password); the owner elsewhere gets in', async () => {
    const client = basic('acme-password', 'acme-password-secret');
    const attempt = (ip: string, password: string) =>
      tokenRequest(ip, { grant_type: 'password', username: 'viewer@acme.test', password }, client);
    expect((await attempt('10.2.0.1', 'wrong-1')).statusCode).toBe(400);
    expect((await attempt('10.2.0.1', 'wrong-2')).statusCode).toBe(400);
    const blocked = await attempt('10.2.0.1', 'V1ewer-pass-acme');
    expect429(blocked);
    expect(blocked.headers.ratelimit).toMatch(/^limit=2, remaining=0, reset=\d+$/);
    // The account name is normalised: case does not get around it.
    expect429(
      await tokenRequest(
        '10.2.0.1',
        { grant_type: 'password', username: 'VIEWER@acme.test', password: 'V1ewer-pass-acme' },
        basic('acme-other', 'acme-other-secret'),
      ),
    );
    // (Another client: this one has spent its per-client request ceiling of 3.)
    expect(
      (
        await tokenRequest(
          '10.2.0.2',
          { grant_type: 'password', username: 'viewer@acme.test', password: 'V1ewer-pass-acme' },
          basic('acme-other', 'acme-other-secret'),
        )
      ).statusCode,
    ).toBe(200);
  });

  it('per client: after repeated wrong secrets from an address, even the right secret waits there; the client elsewhere authenticates', async () => {
    expect((await tokenRequest('10.3.0.1', { grant_type: 'client_credentials' }, basic('acme-jwt', 'wrong'))).statusCode).toBe(401);
    expect((await tokenRequest('10.3.0.1', { grant_type: 'client_credentials' }, basic('acme-jwt', 'wrong'))).statusCode).toBe(401);
    expect429(await tokenRequest('10.3.0.1', { grant_type: 'client_credentials', scope: 'app' }, basic('acme-jwt', 'acme-jwt-secret')));
    expect(
      (await tokenRequest('10.3.0.2', { grant_type: 'client_credentials', scope: 'app' }, basic('acme-jwt', 'acme-jwt-secret'))).statusCode,
    ).toBe(200);
  });
});
