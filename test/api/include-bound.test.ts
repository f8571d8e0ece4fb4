import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INCLUDE_LIMIT } from '../../src/api/compound.js';
import type { App } from '../../src/server/context.js';
import { backends, useDatabase } from '../support/databases.js';
import { JSON_API, PUBLIC_URL, type TestOrg, call, createOrg, makeApp } from './support.js';

/**
 * A to-many relationship loaded by its owners is bounded per owner in compound documents and on
 * its relationship endpoint (api/compound.ts): a `reading.created` subscription logs a delivery
 * per reading, and `?include=deliveries` must not load a month of them.
 */

type Doc = Record<string, any>;

describe.each(backends)('to-many relationships bounded per owner on $name', (backend) => {
  const database = useDatabase(backend);
  let app: App;
  let org: TestOrg;
  const busy = { webhook: '', newest: [] as string[] };
  const quiet = { webhook: '', deliveries: [] as string[] };
  const alarm = { id: '', oldest: [] as string[] };

  const get = (url: string) => call(app, { url, token: org.adminKey, accept: JSON_API });

  /** `count` delivery attempts of one event, a second apart; their ids, newest first. */
  async function deliveries(webhookId: string, count: number): Promise<string[]> {
    const event = await database.db
      .insertInto('events')
      .values({ organization_id: org.id, type: 'alarm.resolved', data: '{}', occurred_at: new Date() })
      .returning('id')
      .executeTakeFirstOrThrow();
    const task = await database.db
      .insertInto('webhook_tasks')
      .values({ webhook_id: webhookId, event_id: event.id, next_attempt_at: '2999-01-01T00:00:00Z' })
      .returning('id')
      .executeTakeFirstOrThrow();
    const { rows } = await sql<{ id: string }>`
      insert into webhook_deliveries (task_id, webhook_id, event_id, attempt, status_code, duration_ms, created_at)
      select ${task.id}, ${webhookId}, ${event.id}, n, 500, 3, timestamptz '2030-01-01T00:00:00Z' + n * interval '1 second'
      from generate_series(1, ${count}::int) as n
      order by n desc
      returning id`.execute(database.db);
    return rows.map((row) => row.id);
  }

  const webhook = async (path: string) => {
    const created = await call(app, {
      method: 'POST',
      url: '/v1/webhooks',
      token: org.adminKey,
      body: { url: `https://93.184.216.34/${path}`, event_types: ['alarm.resolved'], enabled: false },
    });
    expect(created.statusCode, created.body).toBe(201);
    return created.data.data.id as string;
  };

  beforeAll(async () => {
    app = await makeApp(database.db, database.current.handle.kind);
    org = await createOrg(database.db, 'bound');
    busy.webhook = await webhook('busy');
    busy.newest = (await deliveries(busy.webhook, INCLUDE_LIMIT + 20)).slice(0, INCLUDE_LIMIT);
    quiet.webhook = await webhook('quiet');
    quiet.deliveries = await deliveries(quiet.webhook, 3);

    const device = await call(app, {
      method: 'POST',
      url: '/v1/devices',
      token: org.adminKey,
      body: { serial: 'BOUND-1', name: 'Bound', sensors: [{ key: 'temp', kind: 'temperature' }] },
    });
    expect(device.statusCode, device.body).toBe(201);
    const sensor = await database.db
      .selectFrom('sensors')
      .select('id')
      .where('organization_id', '=', org.id)
      .where('device_id', '=', device.data.data.id)
      .executeTakeFirstOrThrow();
    const now = new Date();
    const row = await database.db
      .insertInto('alarms')
      .values({
        organization_id: org.id,
        threshold_id: null,
        sensor_id: sensor.id,
        kind: 'range',
        severity: 'warning',
        condition: 'above_max',
        value: 9,
        limit_value: 8,
        started_at: now,
        triggered_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    alarm.id = row.id;
    const { rows } = await sql<{ id: string }>`
      insert into alarm_comments (alarm_id, organization_id, author_user_id, body, created_at)
      select ${alarm.id}, ${org.id}, null, 'comment ' || n, timestamptz '2030-01-01T00:00:00Z' + n * interval '1 second'
      from generate_series(1, ${INCLUDE_LIMIT + 5}::int) as n
      order by n
      returning id`.execute(database.db);
    alarm.oldest = rows.map((r) => r.id).slice(0, INCLUDE_LIMIT);
  });

  afterAll(async () => {
    await app?.close();
  });

  const ids = (data: Doc[]) => data.map((item) => item.id);

  it('includes the latest deliveries of each webhook, says the linkage is cut, and links to the paged list', async () => {
    const response = await get(`/v1/webhooks/${busy.webhook}?include=deliveries`);
    expect(response.statusCode, response.body).toBe(200);
    const relationship = response.data.data.relationships.deliveries;
    expect(ids(relationship.data)).toEqual(busy.newest);
    expect(relationship.meta).toEqual({ truncated: true, limit: INCLUDE_LIMIT });
    expect(relationship.links.related).toBe(`${PUBLIC_URL}/v1/webhooks/${busy.webhook}/deliveries`);
    expect(response.data.included).toHaveLength(INCLUDE_LIMIT);

    // The related link pages through all of them.
    const page = await call(app, { url: `/v1/webhooks/${busy.webhook}/deliveries?limit=1000`, token: org.adminKey });
    expect(page.statusCode, page.body).toBe(200);
    expect(page.data.data).toHaveLength(INCLUDE_LIMIT + 20);
  });

  it('bounds each webhook of a list on its own (one statement, partitioned by webhook)', async () => {
    const response = await get('/v1/webhooks?include=deliveries');
    expect(response.statusCode, response.body).toBe(200);
    const byId = new Map<string, Doc>(response.data.data.map((item: Doc) => [item.id, item.relationships.deliveries]));
    expect(ids(byId.get(busy.webhook)!.data)).toEqual(busy.newest);
    expect(byId.get(busy.webhook)!.meta).toEqual({ truncated: true, limit: INCLUDE_LIMIT });
    expect(ids(byId.get(quiet.webhook)!.data)).toEqual(quiet.deliveries);
    expect(byId.get(quiet.webhook)!.meta).toBeUndefined();
    expect(response.data.included).toHaveLength(INCLUDE_LIMIT + 3);
  });

  it('bounds the relationship endpoint the same way', async () => {
    const busyLinkage = await get(`/v1/webhooks/${busy.webhook}/relationships/deliveries`);
    expect(busyLinkage.statusCode, busyLinkage.body).toBe(200);
    expect(ids(busyLinkage.data.data)).toEqual(busy.newest);
    expect(busyLinkage.data.meta).toEqual({ truncated: true, limit: INCLUDE_LIMIT });
    expect(busyLinkage.data.links.related).toBe(`${PUBLIC_URL}/v1/webhooks/${busy.webhook}/deliveries`);

    const quietLinkage = await get(`/v1/webhooks/${quiet.webhook}/relationships/deliveries`);
    expect(ids(quietLinkage.data.data)).toEqual(quiet.deliveries);
    expect(quietLinkage.data.meta).toBeUndefined();
  });

  it("bounds an alarm's comments through the same mechanism (the oldest first, as listed)", async () => {
    const response = await get(`/v1/alarms/${alarm.id}?include=comments`);
    expect(response.statusCode, response.body).toBe(200);
    const relationship = response.data.data.relationships.comments;
    expect(ids(relationship.data)).toEqual(alarm.oldest);
    expect(relationship.meta).toEqual({ truncated: true, limit: INCLUDE_LIMIT });
    expect(relationship.links.related).toBe(`${PUBLIC_URL}/v1/alarms/${alarm.id}/comments`);

    const linkage = await get(`/v1/alarms/${alarm.id}/relationships/comments`);
    expect(linkage.statusCode, linkage.body).toBe(200);
    expect(linkage.data.data).toHaveLength(INCLUDE_LIMIT);
    expect(linkage.data.meta).toEqual({ truncated: true, limit: INCLUDE_LIMIT });
  });
});
