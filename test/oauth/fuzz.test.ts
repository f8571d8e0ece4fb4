import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { App } from '../../src/server/context.js';
import { injectApp } from './support/inject-app.js';
import { basic } from './support/oauth-server.js';

/**
 * Property: whatever arrives at the token, introspection, revocation, device and token-info
 * endpoints — malformed bodies, wrong media types, repeated or odd parameters, garbage
 * credentials — the answer is never a 5xx, and errors are RFC 6749 JSON, never problem+json.
 */

let app: App;
let close: () => Promise<void>;
beforeAll(async () => {
  ({ app, close } = await injectApp());
});
afterAll(async () => close?.());

const PARAM_NAMES = [
  'grant_type',
  'client_id',
  'client_secret',
  'scope',
  'code',
  'redirect_uri',
  'code_verifier',
  'refresh_token',
  'username',
  'password',
  'token',
  'token_type_hint',
  'device_code',
  'external_authentication_token',
  '__proto__',
  'constructor',
  'hasOwnProperty',
];
const VALUES = [
  'client_credentials',
  'password',
  'authorization_code',
  'refresh_token',
  'urn:ietf:params:oauth:grant-type:device_code',
  'implicit',
  'acme-m2m',
  'acme-spa',
  'acme-device',
  'acme-ext',
  'acme-password',
  'app',
  '*',
  'me',
  'devices:read users:write',
  'sc_rt_abc',
  'sc_at_abc',
  'sc_ac_abc',
  'sc_dc_abc',
  'eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.eyJqdGkiOiJ4In0.c2ln',
  'eyJhbGciOiJub25lIn0.e30.',
  'sk_live_acmeci0000000000000000000000',
  'admin@acme.test',
  'ext-acme-viewer',
  'access_token',
  'http://127.0.0.1:9876/callback',
  'a'.repeat(43),
  'x'.repeat(9000),
];

const name = fc.oneof(fc.constantFrom(...PARAM_NAMES), fc.string({ maxLength: 12 }));
const value = fc.oneof(fc.constantFrom(...VALUES), fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }));
const params = fc.dictionary(name, value, { maxKeys: 6 });
const jsonish = fc.oneof(
  value,
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.array(value, { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), value, { maxKeys: 2 }),
);

const body = fc.oneof(
  fc.constant(undefined),
  fc.string({ maxLength: 200 }),
  params.map((p) => new URLSearchParams(p).toString()),
  // Repeated parameters and raw, badly escaped form bodies.
  fc.array(fc.tuple(name, value), { maxLength: 6 }).map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join('&')),
  fc.dictionary(name, jsonish, { maxKeys: 6 }).map((p) => JSON.stringify(p)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
);

const contentType = fc.constantFrom(
  undefined,
  'application/x-www-form-urlencoded',
  'application/x-www-form-urlencoded; charset=utf-8',
  'application/json',
  'application/json; charset=utf-8',
  'application/vnd.api+json',
  'text/plain',
  'multipart/form-data; boundary=xyz',
  'application/xml',
  'garbage',
);

const authorization = fc.oneof(
  fc.constant(undefined),
  fc
    .tuple(fc.constantFrom('acme-m2m', 'acme-password', 'acme-spa', 'acme:odd%id', 'nobody'), fc.string({ maxLength: 20 }))
    .map(([id, secret]) => basic(id, secret)),
  fc.string({ maxLength: 40 }).map((s) => `Basic ${Buffer.from(s).toString('base64')}`),
  fc.string({ maxLength: 40 }).map((s) => `Basic ${s}`),
  fc.constantFrom(...VALUES).map((v) => `Bearer ${v}`),
  fc.string({ maxLength: 40 }).map((s) => `Bearer ${s}`),
  fc.string({ maxLength: 40 }),
);

const endpoint = fc.constantFrom(
  { method: 'POST', url: '/oauth/token' },
  { method: 'POST', url: '/oauth2/token' },
  { method: 'POST', url: '/auth/oauth' },
  { method: 'POST', url: '/oauth/introspect' },
  { method: 'POST', url: '/oauth/revoke' },
  { method: 'POST', url: '/oauth/device_authorization' },
  { method: 'GET', url: '/oauth/token/info' },
  { method: 'DELETE', url: '/oauth/token' },
);

it('thousands of malformed OAuth requests: never a 5xx, errors always RFC 6749 JSON', async () => {
  const seen = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(
      endpoint,
      fc.option(params, { nil: undefined }),
      body,
      contentType,
      authorization,
      async (target, query, payload, type, auth) => {
        const headers: Record<string, string> = {};
        if (type !== undefined) headers['content-type'] = type;
        if (auth !== undefined) headers.authorization = auth;
        const qs = query ? `?${new URLSearchParams(query)}` : '';
        let response: Awaited<ReturnType<typeof app.inject>>;
        try {
          response = await app.inject({
            method: target.method as 'POST',
            url: target.url + qs,
            headers,
            ...(payload !== undefined && target.method !== 'GET' && { payload }),
          });
        } catch (error) {
          // light-my-request refuses some header values itself (invalid characters): not our server's answer.
          if (
            /Invalid character|ERR_INVALID_CHAR|ERR_HTTP_INVALID_HEADER_VALUE/.test(
              String((error as Error).message) + String((error as NodeJS.ErrnoException).code),
            )
          )
            return;
          throw error;
        }
        seen.set(response.statusCode, (seen.get(response.statusCode) ?? 0) + 1);
        expect(response.statusCode, `${target.method} ${target.url}${qs} ${type} ${payload}`).toBeLessThan(500);
        if (response.statusCode >= 400) {
          expect(response.headers['content-type']).toMatch(/^application\/json/);
          const parsed = response.json() as { error?: unknown };
          expect(typeof parsed.error).toBe('string');
        }
      },
    ),
    { numRuns: 3000 },
  );
  // The generator reaches past validation into the grants, not only the parsers.
  expect(seen.get(400)).toBeGreaterThan(100);
  expect(seen.get(401)).toBeGreaterThan(100);
}, 120_000);
