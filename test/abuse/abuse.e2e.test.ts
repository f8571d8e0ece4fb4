import { describe, expect, it } from 'vitest';
import { parseForms } from '../support/browser.js';
import { specExampleYaml } from '../support/files.js';
import { type TestServer, startTestServer, useTestServer } from '../support/server.js';

/**
 * Issue 11's abuse protection, end to end over HTTP. The server trusts the loopback proxy
 * (TRUST_PROXY=loopback), so each request's X-Forwarded-For is its caller's address, as behind a
 * reverse proxy. Two-node suites: nodes.e2e.test.ts.
 */

const ATTACKER = '203.0.113.66';
const OWNER = '198.51.100.7';
const NAT = '192.0.2.1';
const PROVISIONING = specExampleYaml();
const M2M = `Basic ${Buffer.from('acme-m2m:acme-m2m-secret').toString('base64')}`;
const API_KEY = 'sk_live_acmeci0000000000000000000000';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

function passwordGrant(server: TestServer, from: string, username: string, password: string): Promise<Response> {
  return server.fetch('/oauth/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': from },
    body: JSON.stringify({
      grant_type: 'password',
      client_id: 'acme-password',
      client_secret: 'acme-password-secret',
      username,
      password,
      scope: '*',
    }),
  });
}

function clientCredentials(server: TestServer, from: string, authorization: string): Promise<Response> {
  return server.fetch('/oauth/token', {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': from },
    body: 'grant_type=client_credentials',
  });
}

/** Signs in through the login form from `from`; the status of the form post (303 signed in, 400 wrong, 429 throttled). */
async function loginForm(server: TestServer, from: string, email: string, password: string): Promise<number> {
  const page = await server.fetch('/login', { headers: { 'x-forwarded-for': from } });
  const cookie = page.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  const form = parseForms(await page.text()).find((f) => 'password' in f.fields)!;
  const post = await server.fetch(form.action, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': from },
    body: new URLSearchParams({ ...form.fields, email, password }),
  });
  return post.status;
}

const statuses = async (responses: Promise<Response>[]) => (await Promise.all(responses)).map((r) => r.status);

describe('the owner keeps working while an attacker fails from another address', () => {
  const server = useTestServer(() =>
    startTestServer({
      provisioning: PROVISIONING,
      overrides: { trustProxy: ['loopback'] },
      env: { OAUTH_RATE_LIMIT_IP: '0', OAUTH_RATE_LIMIT_CLIENT: '0' },
    }),
  );

  it('password grant and login form: the attacker is refused (429, before the password is checked), the owner signs in throughout', async () => {
    const seen: number[] = [];
    for (let i = 0; i < 12; i++) {
      seen.push((await passwordGrant(server, ATTACKER, 'admin@acme.test', `guess-${i}`)).status);
      if (i % 3 === 0) seen.push(await loginForm(server, ATTACKER, 'Admin@acme.test', `form-guess-${i}`));
      expect((await passwordGrant(server, OWNER, 'admin@acme.test', 'Adm1n-pass-acme')).status).toBe(200);
    }
    // 5 free failures shared by both doors, then every attempt waits (the right password too).
    expect(seen.slice(0, 5).every((s) => s === 400)).toBe(true);
    expect(seen.slice(5).every((s) => s === 429)).toBe(true);
    expect((await passwordGrant(server, ATTACKER, 'admin@acme.test', 'Adm1n-pass-acme')).status).toBe(429);
    const refused = await passwordGrant(server, ATTACKER, 'admin@acme.test', 'Adm1n-pass-acme');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await refused.json()).toMatchObject({ error: 'rate_limited' });
    expect(await loginForm(server, OWNER, 'admin@acme.test', 'Adm1n-pass-acme')).toBe(303);
  });

  it('client secrets: wrong secrets from one address never lock the real client out', async () => {
    const seen: number[] = [];
    for (let i = 0; i < 14; i++) {
      seen.push((await clientCredentials(server, ATTACKER, basic('acme-m2m', `wrong-${i}`))).status);
      expect((await clientCredentials(server, OWNER, M2M)).status).toBe(200);
    }
    expect(seen.slice(0, 10).every((s) => s === 401)).toBe(true);
    expect(seen.slice(10).every((s) => s === 429)).toBe(true);
    // Even the right secret waits at the attacker's address (no oracle through the verified-secret cache).
    expect((await clientCredentials(server, ATTACKER, M2M)).status).toBe(429);
    const introspection = await server.fetch('/oauth/introspect', {
      method: 'POST',
      headers: { authorization: M2M, 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': OWNER },
      body: 'token=sc_at_x',
    });
    expect(introspection.status).toBe(200);
  });

  it('one address behind which colleagues work (NAT): the guesser spends its budget, those who signed in from there before keep signing in', async () => {
    expect((await passwordGrant(server, NAT, 'viewer@acme.test', 'V1ewer-pass-acme')).status).toBe(200);
    const spray = await statuses(Array.from({ length: 34 }, (_, i) => passwordGrant(server, NAT, `someone${i}@acme.test`, 'Winter2026!')));
    expect(spray.filter((s) => s === 400).length).toBeLessThanOrEqual(30 + 4);
    expect(spray.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect((await passwordGrant(server, NAT, 'newcomer@acme.test', 'Winter2026!')).status).toBe(429);
    expect((await passwordGrant(server, NAT, 'viewer@acme.test', 'V1ewer-pass-acme')).status).toBe(200);
  });

  it('bearer credentials at /v1: failures from one address are limited, known credentials and other addresses are not', async () => {
    const from = '203.0.113.99';
    const call = (authorization: string, address = from) =>
      server.fetch('/v1/devices', { headers: { authorization, 'x-forwarded-for': address } });
    expect((await call(`Bearer ${API_KEY}`)).status).toBe(200);
    const seen: number[] = [];
    for (let i = 0; i < 104; i++) seen.push((await call(`Bearer sk_live_wrong${i}`)).status);
    expect(seen.slice(0, 100).every((s) => s === 401)).toBe(true);
    expect(seen.slice(100).every((s) => s === 429)).toBe(true);
    const refused = await call('Bearer sc_dev_unknown');
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // The key this address used before still works; other addresses are unaffected.
    expect((await call(`Bearer ${API_KEY}`)).status).toBe(200);
    expect((await call('Bearer sk_live_wrong', OWNER)).status).toBe(401);
  });

  it('an introspection flood with unknown client_ids is throttled after the address budget, while a legitimate password grant stays fast', async () => {
    const from = '203.0.113.77';
    const timeGrant = async () => {
      const started = performance.now();
      expect((await passwordGrant(server, OWNER, 'viewer@acme.test', 'V1ewer-pass-acme')).status).toBe(200);
      return performance.now() - started;
    };
    const before: number[] = [];
    for (let i = 0; i < 5; i++) before.push(await timeGrant());
    const flood: Promise<number[]> = (async () => {
      const all: number[] = [];
      // 20 callers at once, 600 requests in all.
      await Promise.all(
        Array.from({ length: 20 }, async (_, worker) => {
          for (let i = 0; i < 30; i++) {
            const response = await server.fetch('/oauth/introspect', {
              method: 'POST',
              headers: {
                authorization: basic(`nobody-${worker}-${i}`, 'secret'),
                'content-type': 'application/x-www-form-urlencoded',
                'x-forwarded-for': from,
              },
              body: 'token=sc_at_x',
            });
            all.push(response.status);
          }
        }),
      );
      return all;
    })();
    const during: number[] = [];
    for (let i = 0; i < 5; i++) during.push(await timeGrant());
    const flooded = await flood;
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const checked = flooded.filter((s) => s === 401).length;
    console.log(
      `introspection flood: ${flooded.length} requests, ${checked} checked (401), ${flooded.filter((s) => s === 429).length} refused (429); password grant median ${median(before).toFixed(0)} ms before, ${median(during).toFixed(0)} ms during`,
    );
    // Only the address's budget (30 failures) reaches argon2id, plus what was already running then.
    expect(checked).toBeLessThanOrEqual(30 + 4);
    expect(flooded.filter((s) => s === 429).length).toBe(flooded.length - checked);
    // What keeps the grant fast is that only the budget reaches argon2id (asserted above; unthrottled,
    // the flood took the grant from ~25 ms to ~600 ms). Its latency is printed, not asserted: a
    // timed bound failed CI on this shared 2-core machine while other suites ran (336 ms).
  });
});

describe('X-Forwarded-For from a peer that is not a trusted proxy is ignored', () => {
  const server = useTestServer(() =>
    startTestServer({
      provisioning: PROVISIONING,
      overrides: { trustProxy: ['10.9.9.9'] },
      env: { OAUTH_RATE_LIMIT_IP: '0', OAUTH_RATE_LIMIT_CLIENT: '0', ABUSE_SOURCE_FREE_FAILURES: '8' },
    }),
  );

  it('a forged address per request does not give a new budget: the failures count for the real peer', async () => {
    const seen: number[] = [];
    for (let i = 0; i < 12; i++) seen.push((await passwordGrant(server, `198.18.${i}.${i + 1}`, `victim${i}@acme.test`, 'guess')).status);
    expect(seen.slice(0, 8).every((s) => s === 400)).toBe(true);
    expect(seen.slice(8).every((s) => s === 429)).toBe(true);
  });
});
