import fs from 'node:fs/promises';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest } from '../support/http.js';
import { type TestServer, serverBackends, startTestServer } from '../support/server.js';

/**
 * Issue 11, "answer every input with a 4xx": generated hostile values — U+0000, lone surrogates,
 * over-long strings, deep nesting, huge and tiny numbers, odd header bytes, forged cursors — sent
 * into the path parameters, query strings, bodies (JSON, JSON:API, form, NDJSON) and headers of
 * every route the server has, with valid and invalid credentials. No answer may be a 5xx.
 */

const RUNS = Number(process.env.HOSTILE_RUNS ?? 2000);
const SPEC_EXAMPLE = new URL('../fixtures/spec-example.yaml', import.meta.url);

// ---- what the server has ------------------------------------------------------------------------

interface Route {
  method: string;
  path: string;
}

/** Every route, from Fastify's own route tree (pages and OAuth endpoints are not in OpenAPI). */
function routesOf(tree: string): Route[] {
  const routes: Route[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^([│ ]*)[├└]── (\S+)(?: \(([^)]*)\))?/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    stack.length = depth;
    stack.push(match[2]!);
    const path = stack.join('');
    if (!match[3] || path.includes('*') || path.startsWith('/docs/')) continue;
    for (const method of match[3].split(', ')) if (method !== 'HEAD') routes.push({ method, path });
  }
  return routes;
}

/** Names a route's body and query take, from /openapi.json, plus the OAuth and page parameters. */
const COMMON_NAMES = [
  'grant_type',
  'client_id',
  'client_secret',
  'username',
  'password',
  'scope',
  'refresh_token',
  'code',
  'redirect_uri',
  'code_verifier',
  'token',
  'token_type_hint',
  'device_code',
  'external_authentication_token',
  'email',
  'csrf_token',
  'return_to',
  'decision',
  'user_code',
  'response_type',
  'state',
  'code_challenge',
  'code_challenge_method',
  'prompt',
  'organization_name',
  'organization_slug',
  'readings',
  'sensor',
  'sensor_id',
  'ts',
  'value',
  'name',
  'cursor',
  'page[after]',
  'limit',
  'sort',
  'q',
  '__proto__',
];

function fieldNames(openapi: any, route: Route): { body: string[]; query: string[] } {
  const template = route.path.replace(/:(\w+)/g, '{$1}');
  const operation = openapi.paths?.[template]?.[route.method.toLowerCase()];
  const content = operation?.requestBody?.content ?? {};
  const schema = (Object.values(content)[0] as any)?.schema;
  const body = Object.keys(schema?.properties ?? {});
  const query = (operation?.parameters ?? []).filter((p: any) => p.in === 'query').map((p: any) => p.name as string);
  return { body, query };
}

// ---- hostile values -----------------------------------------------------------------------------

/**
 * JSON text written into a document as is: numbers JavaScript cannot hold (1e400 parses to
 * Infinity, 1e-400 to 0, long integers lose digits), and nesting deeper than a generated value
 * should be (fast-check would recurse through it to print a counterexample).
 */
class RawJson {
  constructor(readonly text: string) {}
}

/** Text with what PostgreSQL cannot hold, around ordinary text. */
const around = (core: fc.Arbitrary<string>) =>
  fc.tuple(fc.string({ maxLength: 6 }), core, fc.string({ maxLength: 6 })).map(([a, b, c]) => a + b + c);
const hostileString = fc.oneof(
  { weight: 3, arbitrary: around(fc.constantFrom('\u0000', '\u0000\u0000')) },
  { weight: 3, arbitrary: around(fc.constantFrom('\ud800', '\udfff', '\udc00\ud800', '\udbff')) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '%00',
      '\u202e',
      '\ufeff',
      '💥',
      '../../etc/passwd',
      "' or 1=1 --",
      '',
      ' ',
      '-1',
      '0',
      'null',
      'true',
      '[]',
      '{}',
      'NaN',
      'Infinity',
      '9'.repeat(400),
      '2024-13-45T25:61:61Z',
      '0000-01-01T00:00:00Z',
      '+275760-09-13T00:00:00Z',
      'P99999Y',
      'PT0S',
      '-ts',
      'sc_at_x',
      'sk_live_x',
      'sc_dev_x',
      '00000000-0000-0000-0000-000000000000',
    ),
  },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.integer({ min: 300, max: 70_000 }).map((n) => 'x'.repeat(n)) },
);
/** The same without the over-long strings, for URLs (which have a length limit of their own: 414). */
const hostileShortString = hostileString.filter((s) => s.length < 300);

const hostileNumber = fc.oneof(
  fc
    .constantFrom(
      '1e400',
      '-1e400',
      '1e-400',
      '123456789012345678901234567890',
      '-0',
      '9007199254740993',
      '2147483648',
      '-2147483649',
      '5e-324',
    )
    .map((t) => new RawJson(t)),
  fc.double(),
  fc.integer(),
);

/** A forged pagination cursor: base64url JSON with values no page ever produced, or no JSON at all. */
const forgedCursor = fc.oneof(
  fc
    .array(
      fc.oneof(
        hostileShortString,
        fc.double(),
        fc.integer({ min: -(2 ** 53), max: 2 ** 53 }),
        fc.constantFrom(1e20, -1e20, 253402300800000, -62135596800001),
      ),
      { maxLength: 3 },
    )
    .map((v) => Buffer.from(JSON.stringify({ v })).toString('base64url')),
  fc.jsonValue({ maxDepth: 2 }).map((v) => Buffer.from(JSON.stringify(v)).toString('base64url')),
  hostileShortString,
);

const jsonValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileString,
    hostileNumber,
    fc.constantFrom(null, true, false),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...COMMON_NAMES), hostileString), tie('value'), { maxKeys: 3 }),
  ),
})).value;

function toJson(value: unknown): string {
  if (value instanceof RawJson) return value.text;
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'null';
  if (Array.isArray(value)) return `[${value.map(toJson).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${toJson(v)}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

/** Percent-encodes any UTF-16 string, a lone surrogate as the three bytes a careless encoder writes. */
function pct(value: string): string {
  let out = '';
  for (const char of value) {
    try {
      out += encodeURIComponent(char);
    } catch {
      const unit = char.charCodeAt(0);
      out += [0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`)
        .join('');
    }
  }
  return out;
}

const formValue = (v: unknown) => (v instanceof RawJson ? v.text : typeof v === 'string' ? v : (JSON.stringify(v) ?? ''));

/** Latin-1 text Node lets into a header value (obs-text), never the control characters it refuses. */
const oddHeader = fc.string({
  unit: fc
    .integer({ min: 0x20, max: 0xff })
    .filter((c) => c !== 0x7f)
    .map((c) => String.fromCharCode(c)),
  maxLength: 40,
});

// ---- valid requests to mutate --------------------------------------------------------------------
// Random bytes rarely get past a route's first check (grant_type, CSRF, a known client), so most
// requests start from a valid one and replace one of its values: that is what reaches the SQL.

type Json = unknown;

interface Skeleton {
  body?: Record<string, Json>;
  query?: Record<string, string>;
  /** A credential name of `credentials`, or a raw Authorization value. */
  auth?: string;
  /** The browser session to send (`anonymous` or `signedIn`), with its CSRF token in the form. */
  session?: 'anonymous' | 'signedIn';
}

/** A valid value for a JSON schema of the OpenAPI document (ids picked by the property's name). */
function sampleOf(schema: any, name: string, ids: Record<string, string[]>, n: number): Json {
  if (!schema || typeof schema !== 'object') return 'x';
  if (schema.const !== undefined) return schema.const;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(alternatives)) return sampleOf(alternatives.find((a: any) => a.type !== 'null') ?? alternatives[0], name, ids, n);
  const type = Array.isArray(schema.type) ? schema.type.find((t: string) => t !== 'null') : schema.type;
  switch (type) {
    case 'integer':
      return schema.minimum ?? 1;
    case 'number':
      return 1.5;
    case 'boolean':
      return true;
    case 'array':
      return [sampleOf(schema.items, name.replace(/s$/, ''), ids, n)];
    case 'object':
      return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([key, value]) => [key, sampleOf(value, key, ids, n)]));
    default: {
      if (schema.format === 'uuid') {
        const collection = {
          location: 'locations',
          device: 'devices',
          sensor: 'sensors',
          user: 'users',
          group: 'groups',
          scaling_profile: 'scaling-profiles',
        }[name.replace(/_ids?$/, '')];
        return ids[collection ?? 'sensors']?.[0] ?? '00000000-0000-0000-0000-000000000000';
      }
      if (schema.format === 'email') return `fuzz-${n}@example.test`;
      if (schema.format === 'date-time') return new Date(Date.UTC(2026, 0, 1) + n).toISOString();
      if (schema.format === 'uri') return 'https://example.test/x';
      if (schema.pattern) return `fuzz${n}`;
      return `fuzz ${name} ${n}`;
    }
  }
}

/** Paths to every leaf of a document (the values a mutation may replace). */
function leaves(value: Json, path: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(value)) return value.length ? value.flatMap((v, i) => leaves(v, [...path, i])) : [path];
  if (value && typeof value === 'object' && !(value instanceof RawJson)) {
    const entries = Object.entries(value);
    return entries.length ? entries.flatMap(([k, v]) => leaves(v, [...path, k])) : [path];
  }
  return [path];
}

function replaceAt(value: Json, path: (string | number)[], replacement: Json): Json {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path;
  const copy: any = Array.isArray(value) ? [...value] : { ...(value as object) };
  copy[head as string] = replaceAt(copy[head as string], rest, replacement);
  return copy;
}

const PKCE = { code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' };
const AUTHORIZE = {
  client_id: 'acme-web',
  redirect_uri: 'http://127.0.0.1:9876/callback',
  response_type: 'code',
  state: 'st',
  scope: 'devices:read',
  ...PKCE,
};
const TOKEN_REQUESTS: Skeleton[] = [
  {
    body: {
      grant_type: 'password',
      client_id: 'acme-password',
      client_secret: 'acme-password-secret',
      username: 'admin@acme.test',
      password: 'Adm1n-pass-acme',
      scope: '*',
    },
  },
  { body: { grant_type: 'password', client_id: 'acme-ext', external_authentication_token: 'ext-acme-viewer' } },
  { body: { grant_type: 'client_credentials', scope: 'app' }, auth: 'm2m' },
  { body: { grant_type: 'refresh_token', refresh_token: 'sc_rt_x', client_id: 'acme-password', client_secret: 'acme-password-secret' } },
  {
    body: {
      grant_type: 'authorization_code',
      code: 'sc_ac_x',
      redirect_uri: 'http://127.0.0.1:9876/callback',
      code_verifier: 'a'.repeat(43),
    },
    auth: 'web',
  },
  {
    body: {
      grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
      device_code: 'x',
      client_id: 'acme-password',
      client_secret: 'acme-password-secret',
    },
  },
];

/** The valid requests of the routes OpenAPI does not describe (OAuth endpoints, pages). */
function hiddenSkeletons(route: Route, organizationId: string): Skeleton[] {
  const key = `${route.method} ${route.path}`;
  if (/^POST \/(oauth\/token|oauth2\/token|auth\/oauth)$/.test(key)) return TOKEN_REQUESTS;
  switch (key) {
    case 'POST /oauth/introspect':
      return [{ body: { token: 'ADMIN_TOKEN', token_type_hint: 'access_token' }, auth: 'm2m' }];
    case 'POST /oauth/revoke':
      return [{ body: { token: 'sc_at_x', client_id: 'acme-password', client_secret: 'acme-password-secret' } }];
    case 'POST /oauth/device_authorization':
      return [{ body: { client_id: 'acme-password', client_secret: 'acme-password-secret', scope: 'readings:read' } }];
    case 'GET /oauth/authorize':
    case 'GET /oauth2/auth':
      return [{ query: AUTHORIZE, session: 'signedIn' }];
    case 'POST /oauth/authorize':
    case 'POST /oauth2/auth':
    case 'DELETE /oauth/authorize':
    case 'DELETE /oauth2/auth':
      return [{ body: { ...AUTHORIZE, decision: 'allow' }, session: 'signedIn' }];
    case 'GET /login':
      return [{ query: { return_to: '/account/authorized-applications' }, session: 'anonymous' }];
    case 'POST /login':
      return [
        {
          body: { email: 'nobody@acme.test', password: 'not-the-password', return_to: '/account/authorized-applications' },
          session: 'anonymous',
        },
      ];
    case 'POST /logout':
      return [{ body: { return_to: '/device' }, session: 'anonymous' }];
    case 'GET /device':
      return [{ query: { user_code: 'ABCD-EFGH' }, session: 'signedIn' }];
    case 'POST /device':
      return [{ body: { user_code: 'ABCD-EFGH', decision: 'allow' }, session: 'signedIn' }];
    case 'GET /account/authorized-applications':
      return [{ query: { revoked: 'acme-web' }, session: 'signedIn' }];
    case 'POST /account/authorized-applications/revoke':
      return [{ body: { client_id: 'acme-web', organization_id: organizationId }, session: 'signedIn' }];
    case 'GET /setup':
      return [{ query: { token: 'x' } }];
    case 'POST /setup':
      return [
        { body: { token: 'x', organization_name: 'Org', organization_slug: 'org', email: 'a@example.test', password: 'a-long-password' } },
      ];
    default:
      return [{}];
  }
}

// ---- the property ------------------------------------------------------------------------------

describe.each(serverBackends)('hostile inputs on every route ($name)', (backend) => {
  let server: TestServer;
  let routes: Route[];
  let openapi: any;
  let organizationId: string;
  const credentials: Record<string, string> = {};
  const sessions: Record<string, { cookie: string; csrf: string }> = {};
  const ids: Record<string, string[]> = {};

  /** The session cookie a response sets, and the CSRF token of the form it shows. */
  const sessionOf = async (response: Response, previous?: { cookie: string }) => {
    const cookie =
      response.headers
        .getSetCookie()
        .map((c) => c.split(';')[0]!)
        .join('; ') ||
      previous?.cookie ||
      '';
    const html = await response.text();
    return { cookie, csrf: /name="csrf_token" value="([^"]+)"/.exec(html)?.[1] ?? '' };
  };

  beforeAll(async () => {
    server = await startTestServer({
      backend: backend.name,
      provisioning: await fs.readFile(SPEC_EXAMPLE, 'utf8'),
      env: { OAUTH_RATE_LIMIT_IP: '0', OAUTH_RATE_LIMIT_CLIENT: '0' },
    });
    routes = routesOf(server.running.app.printRoutes({ commonPrefix: false }));
    openapi = await (await server.fetch('/openapi.json')).json();
    const token = await server.fetch('/oauth/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(TOKEN_REQUESTS[0]!.body),
    });
    credentials.admin = `Bearer ${((await token.json()) as { access_token: string }).access_token}`;
    credentials.apiKey = 'Bearer sk_live_acmeci0000000000000000000000';
    credentials.device = 'Bearer sc_dev_acme0001000000000000000000000';
    credentials.m2m = `Basic ${Buffer.from('acme-m2m:acme-m2m-secret').toString('base64')}`;
    credentials.web = `Basic ${Buffer.from('acme-web:acme-web-secret').toString('base64')}`;
    for (const collection of ['devices', 'sensors', 'locations', 'users', 'api-keys', 'groups', 'calibrations', 'scaling-profiles']) {
      const page = (await (await server.fetch(`/v1/${collection}`, { headers: { authorization: credentials.admin! } })).json()) as {
        data?: { id: string }[];
      };
      ids[collection] = (page.data ?? []).map((item) => item.id);
    }
    organizationId = (
      (await (await server.fetch('/v1/organizations/current', { headers: { authorization: credentials.admin! } })).json()) as {
        data: { id: string };
      }
    ).data.id;
    // Two browser sessions: one anonymous (login, logout), one signed in as the admin (consent, device, account pages).
    sessions.anonymous = await sessionOf(await server.fetch('/login'));
    const login = await server.fetch('/login', {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: sessions.anonymous.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        email: 'admin@acme.test',
        password: 'Adm1n-pass-acme',
        csrf_token: sessions.anonymous.csrf,
        return_to: '/account/authorized-applications',
      }),
    });
    expect(login.status).toBe(303);
    const signedInCookie = (await sessionOf(login, sessions.anonymous)).cookie;
    sessions.signedIn = await sessionOf(await server.fetch('/account/authorized-applications', { headers: { cookie: signedInCookie } }), {
      cookie: signedInCookie,
    });
    expect(sessions.signedIn.csrf).not.toBe('');
    sessions.anonymous = await sessionOf(await server.fetch('/login'));
  }, 120_000);
  afterAll(async () => server?.stop());

  it(`${RUNS} generated requests: never a 5xx`, async () => {
    const statuses = new Map<number, number>();
    const touched = new Set<string>();
    const realIds = Object.values(ids).flat();

    /** Valid requests of a route: from its OpenAPI schemas, or written out above. */
    const skeletonsOf = (route: Route, n: number): Skeleton[] => {
      if (!route.path.startsWith('/v1')) return hiddenSkeletons(route, organizationId);
      const template = route.path.replace(/:(\w+)/g, '{$1}');
      const operation = openapi.paths?.[template]?.[route.method.toLowerCase()];
      const schema = operation?.requestBody?.content?.['application/json']?.schema;
      const body = schema ? (sampleOf(schema.anyOf?.[0] ?? schema, 'body', ids, n) as Record<string, Json>) : undefined;
      const query = Object.fromEntries(
        (operation?.parameters ?? [])
          .filter((p: any) => p.in === 'query' && p.required)
          .map((p: any) => [p.name, String(sampleOf(p.schema, p.name, ids, n))]),
      );
      return [{ ...(body && { body }), query, auth: route.path === '/v1/ingest' ? 'device' : 'admin' }];
    };

    const hostileValue = fc.oneof(
      { weight: 4, arbitrary: hostileString },
      hostileNumber,
      jsonValue,
      fc.integer({ min: 40, max: 5000 }).map((depth) => new RawJson(`${'['.repeat(depth)}1${']'.repeat(depth)}`)),
    );
    const mutated = fc.record({
      mode: fc.constant('mutated' as const),
      route: fc.nat().map((n) => routes[n % routes.length]!),
      variant: fc.nat(),
      where: fc.constantFrom('body', 'query', 'extra', 'path'),
      leaf: fc.nat(),
      value: hostileValue,
      queryValue: fc.oneof(hostileShortString, forgedCursor),
      cursorName: fc.constantFrom('cursor', 'page[after]', 'sort', 'limit', 'from', 'to', 'interval', 'sensor_ids', 'q'),
      param: fc.oneof(fc.constantFrom(...(realIds.length ? realIds : ['x'])), hostileShortString),
      form: fc.boolean(),
      accept: fc.constantFrom('application/json', 'application/vnd.api+json', undefined),
    });
    const random = fc.record({
      mode: fc.constant('random' as const),
      route: fc.nat().map((n) => routes[n % routes.length]!),
      param: fc.oneof(fc.constantFrom(...(realIds.length ? realIds : ['x'])), hostileShortString, fc.uuid()),
      query: fc.array(fc.tuple(fc.constantFrom('known', 'known', 'cursor', 'page[after]', 'hostile'), hostileShortString, forgedCursor), {
        maxLength: 3,
      }),
      bodyKind: fc.constantFrom('json', 'jsonapi', 'form', 'ndjson', 'deep', 'garbage', 'none'),
      bodyValues: fc.array(fc.tuple(fc.nat(), fc.boolean(), jsonValue), { minLength: 1, maxLength: 4 }),
      auth: fc.oneof(
        { weight: 4, arbitrary: fc.constant('admin') },
        fc.constantFrom('apiKey', 'device', 'm2m', 'none'),
        oddHeader.map((s) => `raw:${s}`),
        hostileShortString.map((s) => `basic:${s}`),
      ),
      accept: fc.oneof(
        fc.constantFrom(
          'application/json',
          'application/vnd.api+json',
          'application/vnd.api+json; ext="x"',
          'application/javascript',
          '*/*',
          undefined,
        ),
        oddHeader,
      ),
      extraHeader: fc.option(oddHeader, { nil: undefined }),
      depth: fc.integer({ min: 40, max: 20_000 }),
    });
    const request = fc.oneof({ weight: 4, arbitrary: mutated }, { weight: 1, arbitrary: random });
    type Input = typeof request extends fc.Arbitrary<infer T> ? T : never;

    /** Revoking the admin token or removing its user would leave the rest of the run unauthenticated. */
    const safeParam = (route: Route, param: string) => {
      const destructive =
        route.method === 'DELETE' ||
        route.path.endsWith('/deactivate') ||
        route.path.includes('/users/:id') ||
        route.path.endsWith('/token');
      return destructive && realIds.includes(param) ? '00000000-0000-0000-0000-000000000000' : param;
    };
    const authorization = (auth: string | undefined, route: Route): string | undefined => {
      if (auth === undefined || auth === 'none') return undefined;
      if (auth.startsWith('raw:')) return auth.slice(4);
      if (auth.startsWith('basic:')) return `Basic ${Buffer.from(auth.slice(6)).toString('base64')}`;
      if (auth === 'admin' && route.path === '/oauth/token' && route.method === 'DELETE') return undefined;
      return credentials[auth];
    };

    const build = (input: Input): { method: string; target: string; headers: Record<string, string>; body: string | undefined } => {
      const { route } = input;
      const headers: Record<string, string> = {};
      let body: string | undefined;
      let query = '';
      let path: string;
      if (input.mode === 'mutated') {
        const skeleton = skeletonsOf(route, input.variant)[input.variant % skeletonsOf(route, input.variant).length]!;
        path = route.path.replace(/:\w+/g, () => pct(input.where === 'path' ? safeParam(route, input.param) : (realIds[0] ?? 'x')));
        let document: Json = skeleton.body ?? {};
        let queryDoc: Record<string, string> = { ...skeleton.query };
        if (input.where === 'body' && skeleton.body) {
          const targets = leaves(document);
          document = replaceAt(document, targets[input.leaf % targets.length]!, input.value);
        } else if (input.where === 'query') {
          const names = Object.keys(queryDoc);
          const name = names.length && input.leaf % 2 === 0 ? names[input.leaf % names.length]! : input.cursorName;
          queryDoc = { ...queryDoc, [name]: input.queryValue };
        } else if (input.where === 'extra') {
          document = { ...(document as object), [COMMON_NAMES[input.leaf % COMMON_NAMES.length]!]: input.value };
        }
        if (document && typeof document === 'object' && (document as Record<string, Json>).token === 'ADMIN_TOKEN')
          document = { ...(document as object), token: credentials.admin!.slice(7) };
        const session = skeleton.session && sessions[skeleton.session];
        if (session) {
          headers.cookie = session.cookie;
          if (skeleton.body) document = { csrf_token: session.csrf, ...(document as object) };
        }
        query = Object.entries(queryDoc)
          .map(([k, v]) => `${pct(k)}=${pct(v)}`)
          .join('&');
        if (skeleton.body || input.where === 'extra') {
          const flat = document as Record<string, Json>;
          const formable = input.form || skeleton.session !== undefined;
          body = formable
            ? Object.entries(flat)
                .map(([k, v]) => `${pct(k)}=${pct(formValue(v))}`)
                .join('&')
            : toJson(document);
          headers['content-type'] = formable ? 'application/x-www-form-urlencoded' : 'application/json';
        }
        const auth = authorization(skeleton.auth, route);
        if (auth) headers.authorization = auth;
        if (input.accept) headers.accept = input.accept;
      } else {
        path = route.path.replace(/:\w+/g, () => pct(safeParam(route, input.param)));
        const { body: bodyNames, query: queryNames } = fieldNames(openapi, route);
        query = input.query
          .map(([kind, hostile, cursor]) => {
            if (kind === 'cursor' || kind === 'page[after]') return `${pct(kind)}=${pct(cursor)}`;
            const name = kind === 'known' && queryNames.length ? queryNames[hostile.length % queryNames.length]! : hostile;
            return `${pct(name)}=${pct(hostile)}`;
          })
          .join('&');
        // Mostly the fields the route declares, so hostile values reach its handler.
        const nameOf = ([index, declared]: [number, boolean, unknown]) =>
          declared && bodyNames.length ? bodyNames[index % bodyNames.length]! : COMMON_NAMES[index % COMMON_NAMES.length]!;
        const fields = Object.fromEntries(input.bodyValues.map((entry) => [nameOf(entry), entry[2]]));
        switch (input.bodyKind) {
          case 'json':
            body = toJson(fields);
            headers['content-type'] = 'application/json';
            break;
          case 'jsonapi':
            body = toJson({ data: { type: route.path.split('/')[2] ?? 'x', attributes: fields } });
            headers['content-type'] = 'application/vnd.api+json';
            break;
          case 'form':
            body = Object.entries(fields)
              .map(([k, v]) => `${pct(k)}=${pct(formValue(v))}`)
              .join('&');
            headers['content-type'] = 'application/x-www-form-urlencoded';
            break;
          case 'ndjson':
            body = input.bodyValues
              .flatMap(([, , v]) => [
                toJson({ sensor: v, ts: '2026-01-01T00:00:00Z', value: 1 }),
                toJson({ sensor: 'temp', ts: v, value: v }),
              ])
              .join('\n');
            headers['content-type'] = 'application/x-ndjson';
            break;
          case 'deep':
            body = `${'['.repeat(input.depth)}1${']'.repeat(input.depth)}`;
            headers['content-type'] = 'application/json';
            break;
          case 'garbage':
            body = formValue(input.bodyValues[0]![2]);
            headers['content-type'] = 'application/json';
            break;
        }
        const auth = authorization(input.auth, route);
        if (auth) headers.authorization = auth;
        if (input.accept !== undefined) headers.accept = input.accept;
        if (input.extraHeader !== undefined) {
          headers['x-request-id'] = input.extraHeader;
          headers.origin = input.extraHeader;
        }
      }
      // A GET body is never read: one larger than the socket's buffer stays unread, and closing such
      // a socket resets it, which can lose the answer on the way (TCP's doing, not the server's).
      if (route.method === 'GET' && body !== undefined && body.length > 8_192) body = body.slice(0, 8_192);
      return { method: route.method, target: `${path}${query ? `?${query}` : ''}`, headers, body };
    };

    await fc.assert(
      fc.asyncProperty(request, async (input) => {
        const { method, target, headers, body } = build(input);
        touched.add(`${input.route.method} ${input.route.path}`);
        const response = await rawRequest(server.url, { method, path: target, headers, ...(body !== undefined && { body }) });
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        const description = `${input.mode} ${method} ${target.slice(0, 300)} ${JSON.stringify(headers).slice(0, 300)} ${body?.slice(0, 300)}`;
        expect(response.status, `${description}\n→ ${response.body.slice(0, 500)}`).toBeLessThan(500);
      }),
      { numRuns: RUNS },
    );
    const tried = [...statuses.values()].reduce((a, b) => a + b, 0);
    console.log(
      `hostile inputs (${backend.name}): ${tried} requests over ${touched.size} of ${routes.length} routes, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`,
    );
    expect(touched.size).toBeGreaterThan(routes.length * 0.9);
  }, 600_000);
});
