import { afterAll, beforeAll, expect, it } from 'vitest';
import { seedOrganization } from '../readings/fixtures.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { apiKey } from './support.js';

/** A page size that coerces to a non-finite number (`1e400` → Infinity) is a 400 naming the parameter, never a 500 (found by the hostile-inputs property test). */
let server: TestServer;
let key: string;
beforeAll(async () => {
  server = await startTestServer({ backend: 'pglite' });
  const org = await seedOrganization(server.db, 'page-limit');
  key = await apiKey(server.db, { id: org.organizationId, ownerId: org.userId }, ['devices:read']);
});
afterAll(() => server?.stop());

it.each([
  ['limit=Infinity', '/query/limit'],
  ['limit=1e400', '/query/limit'],
  ['page%5Bsize%5D=Infinity', '/query/page[size]'],
])('GET /v1/sensors?%s → 400 at %s', async (query, pointer) => {
  const response = await server.fetch(`/v1/sensors?${query}`, { headers: { authorization: `Bearer ${key}`, accept: 'application/json' } });
  expect(response.status).toBe(400);
  const problem = (await response.json()) as { errors: { pointer: string }[] };
  expect(problem.errors[0]?.pointer).toBe(pointer);
});
