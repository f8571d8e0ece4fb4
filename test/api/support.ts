import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { createApiKey } from '../../src/api-keys/api-keys.service.js';
import { SYSTEM } from '../../src/audit/audit.repo.js';
import type { Principal } from '../../src/auth/principal.js';
import { type Config, loadConfig } from '../../src/config/config.js';
import { saveMember } from '../../src/identity/accounts.js';
import { upsertOrganization } from '../../src/identity/organizations.repo.js';
import { SCOPES, type Scope } from '../../src/identity/scopes.js';
import { buildApp } from '../../src/server/app.js';
import type { App } from '../../src/server/context.js';
import type { Db } from '../../src/storage/database.js';
import type { Role } from '../../src/storage/schema.js';
import { silentLogger } from '../support/server.js';

/** Helpers of the resource API tests: an app on a test database, organizations, credentials. */

export const PUBLIC_URL = 'https://api.sensorcloud.test';
export const JSON_API = 'application/vnd.api+json';

/** An app on `db`; `env` and `overrides` as the server's environment and Config would give them. */
export async function makeApp(
  db: Db,
  kind: 'embedded' | 'postgres',
  env: Record<string, string> = {},
  overrides: Partial<Config> = {},
): Promise<App> {
  const config = loadConfig(env, { publicUrl: PUBLIC_URL, logLevel: 'silent', dataDir: undefined, ...overrides });
  const app = await buildApp({ config, db, databaseKind: kind }, { logger: silentLogger() });
  await app.ready();
  return app;
}

export interface TestOrg {
  id: string;
  slug: string;
  ownerId: string;
  ownerEmail: string;
  /** API key of the owner holding every scope. */
  adminKey: string;
}

const unique = () => randomBytes(4).toString('hex');

/** An organization with an owner and an all-scopes API key made through the API-key service. */
export async function createOrg(db: Db, prefix = 'org'): Promise<TestOrg> {
  const slug = `${prefix}-${unique()}`;
  const organization = await upsertOrganization(db, { slug, name: `${prefix} ${slug}` });
  const ownerEmail = `${prefix}-owner-${unique()}@example.test`;
  const owner = await saveMember(db, organization.id, { email: ownerEmail, role: 'owner', name: `${prefix} owner` });
  const org = { id: organization.id, slug, ownerId: owner.id, ownerEmail, adminKey: '' };
  org.adminKey = await apiKey(db, org, [...SCOPES]);
  return org;
}

/** A member of the organization with that role, and an API key of theirs with the given scopes (default: the role's). */
export async function memberWithKey(db: Db, org: TestOrg, role: Role, scopes: Scope[]): Promise<{ userId: string; key: string }> {
  const user = await saveMember(db, org.id, { email: `${role}-${unique()}@example.test`, role });
  return { userId: user.id, key: await apiKey(db, { ...org, ownerId: user.id }, scopes) };
}

/** The org's owner acting with every scope, as the services see a signed-in owner. */
export function ownerPrincipal(org: Pick<TestOrg, 'id' | 'ownerId'>): Principal {
  return {
    kind: 'user_token',
    organizationId: org.id,
    userId: org.ownerId,
    clientId: null,
    scopes: new Set(SCOPES),
    credentialHash: 'test',
    revocationGroup: 'test',
    expiresAt: null,
  };
}

/** An API key of the org's owner (or of `org.ownerId`) with exactly these scopes, created by A's service. */
export async function apiKey(db: Db, org: Pick<TestOrg, 'id' | 'ownerId'>, scopes: Scope[]): Promise<string> {
  const { key } = await createApiKey(db, ownerPrincipal(org), { name: `test-${unique()}`, scopes }, SYSTEM);
  return key;
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export interface Call {
  method?: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE' | 'HEAD' | 'OPTIONS';
  url: string;
  token?: string;
  body?: unknown;
  accept?: string;
  contentType?: string;
}

export async function call(app: App, request: Call): Promise<LightMyRequestResponse & { data: any }> {
  const headers: Record<string, string> = {};
  if (request.token) headers.authorization = `Bearer ${request.token}`;
  if (request.accept) headers.accept = request.accept;
  let payload: string | undefined;
  if (request.body !== undefined) {
    headers['content-type'] = request.contentType ?? 'application/json';
    payload = typeof request.body === 'string' ? request.body : JSON.stringify(request.body);
  }
  const response = await app.inject({
    method: request.method ?? 'GET',
    url: request.url,
    headers,
    ...(payload !== undefined && { payload }),
  });
  let data: any;
  try {
    data = response.body ? JSON.parse(response.body) : undefined;
  } catch {
    data = undefined;
  }
  return Object.assign(response, { data });
}

/** A JSON:API request document for a flat body. */
export function jsonApiDocument(type: string, attributes: Record<string, unknown>, id?: string): { data: Record<string, unknown> } {
  return { data: { type, ...(id && { id }), attributes } };
}

/** Every route of the app, from its route table (Fastify's printRoutes tree). */
export function routeTable(app: App): { method: string; url: string }[] {
  const routes: { method: string; url: string }[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([│ ]*)[├└]── (.*?)(?: \(([^)]*)\))?$/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    stack.length = depth;
    stack.push(match[2]!);
    const url = stack.join('');
    for (const method of (match[3] ?? '')
      .split(',')
      .map((m) => m.trim())
      .filter(Boolean))
      routes.push({ method, url });
  }
  return routes;
}

/** Walks a list by links.next, returning every item's id in order and the number of pages. */
export async function walk(app: App, token: string, firstUrl: string, accept?: string): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let url: string | undefined = firstUrl;
  let pages = 0;
  while (url) {
    const response = await call(app, { url, token, ...(accept && { accept }) });
    if (response.statusCode !== 200) throw new Error(`${url}: ${response.statusCode} ${response.body}`);
    pages++;
    for (const item of response.data.data) ids.push(item.id);
    const next: string | undefined = response.data.links?.next;
    if (next && !next.startsWith(PUBLIC_URL)) throw new Error(`links.next is not absolute from PUBLIC_URL: ${next}`);
    url = next?.slice(PUBLIC_URL.length);
    if (pages > 1000) throw new Error('pagination does not end');
  }
  return { ids, pages };
}

/** A failed delivery attempt (status 500) of a webhook task, written as the delivery worker would log it. */
export async function logFailedDelivery(db: Db, task: { id: string; webhook_id: string; event_id: string }, attempt = 1): Promise<string> {
  const row = await db
    .insertInto('webhook_deliveries')
    .values({
      task_id: task.id,
      webhook_id: task.webhook_id,
      event_id: task.event_id,
      attempt,
      status_code: 500,
      error: null,
      duration_ms: 3,
      next_attempt_at: null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}
