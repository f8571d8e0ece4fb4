import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveMember } from '../../src/identity/accounts.js';
import type { App } from '../../src/server/context.js';
import type { Db } from '../../src/storage/database.js';
import { backends, useDatabase } from '../support/databases.js';
import { type TestOrg, call, createOrg, logFailedDelivery, makeApp, routeTable } from './support.js';
import { isUuid } from '../../src/storage/sql.js';

/**
 * The tenancy matrix: every /v1 route of the route table (so routes added later are covered
 * without touching this file), called by a second organization (with an all-scopes API key and
 * with a device token) with the first organization's ids in the path, in query filters and in
 * request bodies. No answer may carry any id or name of the first organization, no path with its
 * ids may succeed, and the first organization's rows must be exactly as they were afterwards.
 */

const VICTIM = 'victim';

/** Every row of the organization, table by table (tables with organization_id), canonical and sorted. */
async function organizationRows(db: Db, organizationId: string): Promise<Record<string, string[]>> {
  // Tables and partitioned tables (not their partitions, which appear as they are needed).
  const { rows: tables } = await sql<{ table_name: string }>`
    select c.relname as table_name from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    join pg_attribute a on a.attrelid = c.oid and a.attname = 'organization_id' and not a.attisdropped
    where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition
    order by c.relname`.execute(db);
  const out: Record<string, string[]> = {};
  for (const { table_name: table } of tables) {
    const { rows } = await sql<
      Record<string, unknown>
    >`select * from ${sql.table(table)} where organization_id = ${organizationId}`.execute(db);
    out[table] = rows.map((row) => JSON.stringify(Object.entries(row).sort(([a], [b]) => a.localeCompare(b)))).sort();
  }
  return out;
}

/** The ids of the organization's rows, by table, plus the ids of its people. */
async function organizationIds(db: Db, organizationId: string): Promise<Map<string, Set<string>>> {
  const ids = new Map<string, Set<string>>();
  const rows = await organizationRows(db, organizationId);
  for (const [table, list] of Object.entries(rows)) {
    for (const json of list) {
      for (const [column, value] of JSON.parse(json) as [string, unknown][]) {
        if (!isUuid(value)) continue;
        const key = column === 'id' ? table : column;
        if (!ids.has(key)) ids.set(key, new Set());
        ids.get(key)!.add(value);
      }
    }
  }
  return ids;
}

/** Which ids a path segment or a field name stands for. */
const KIND_BY_SEGMENT: Record<string, string[]> = {
  devices: ['devices', 'device_id'],
  device: ['devices', 'device_id'],
  sensors: ['sensors', 'sensor_id'],
  sensor: ['sensors', 'sensor_id'],
  locations: ['locations', 'location_id'],
  location: ['locations', 'location_id'],
  groups: ['groups', 'group_id'],
  group: ['groups', 'group_id'],
  users: ['user_id'],
  user: ['user_id'],
  'scaling-profiles': ['scaling_profiles', 'scaling_profile_id'],
  scaling_profile: ['scaling_profiles', 'scaling_profile_id'],
  calibrations: ['calibrations'],
  calibration: ['calibrations'],
  'api-keys': ['api_keys'],
  applications: ['oauth_clients'],
  'authorized-applications': ['oauth_clients', 'client_pk'],
  invitations: ['organization_invitations'],
  client: ['oauth_clients', 'client_pk'],
  webhooks: ['webhooks'],
  'alarm-thresholds': ['alarm_thresholds'],
  threshold: ['alarm_thresholds', 'threshold_id'],
  alarms: ['alarms'],
  comments: ['alarm_comments'],
  comment: ['alarm_comments'],
  deliveries: ['webhook_deliveries'],
  'notification-rules': ['notification_rules'],
  'audit-events': ['audit_events'],
  'identity-providers': ['identity_providers'],
};

describe.each(backends)('tenancy matrix on $name', (backend) => {
  const database = useDatabase(backend);
  let app: App;
  let victim: TestOrg;
  let attacker: TestOrg;
  let attackerDeviceToken: string;
  let victimIds: Map<string, Set<string>>;
  let allVictimIds: string[];
  let markers: string[];
  let before: Record<string, string[]>;

  const idsOf = (kind: string | undefined): string[] => {
    const keys: string[] = (kind ? KIND_BY_SEGMENT[kind] : undefined) ?? [];
    const found = keys.flatMap((key) => [...(victimIds.get(key) ?? [])]);
    // Unknown kinds (routes added later) get every id of the victim, a few of them.
    return [...new Set(found.length ? found : allVictimIds.slice(0, 12))];
  };

  beforeAll(async () => {
    app = await makeApp(database.db, database.current.handle.kind);
    victim = await createOrg(database.db, VICTIM);
    attacker = await createOrg(database.db, 'attacker');
    const post = async (url: string, body: unknown, token = victim.adminKey) => {
      const response = await call(app, { method: 'POST', url, token, body });
      expect(response.statusCode, `${url}: ${response.body}`).toBeLessThan(300);
      return response.data?.data;
    };
    // The victim has one of everything the API can make.
    const location = await post('/v1/locations', { slug: `${VICTIM}-lab`, name: `${VICTIM} lab` });
    const profile = await post('/v1/scaling-profiles', { name: `${VICTIM} profile`, kind: 'linear', scale: 1.5, offset: 0 });
    const device = await post('/v1/devices', {
      serial: `${VICTIM}-serial`,
      name: `${VICTIM} fridge`,
      location_id: location.id,
      sensors: [
        { key: `${VICTIM}-temp`, kind: 'temperature', unit: '°C', scaling_profile_id: profile.id },
        { key: `${VICTIM}-hum`, kind: 'humidity', unit: '%' },
      ],
    });
    await post('/v1/calibrations', {
      sensor_id: device.sensor_ids[0],
      calibrated_at: '2024-01-01T00:00:00Z',
      due_at: '2030-01-01T00:00:00Z',
      offset: 0.1,
      certificate: `${VICTIM}-cert`,
    });
    // People join by accepting an invitation: one member made directly, one invitation pending.
    const person = await saveMember(database.db, victim.id, {
      email: `${VICTIM}-person@example.test`,
      role: 'member',
      name: `${VICTIM} person`,
    });
    await post('/v1/users', { email: `${VICTIM}-invitee@example.test`, role: 'viewer', name: `${VICTIM} invitee` });
    const group = await post('/v1/groups', {
      name: `${VICTIM} group`,
      user_ids: [person.id, victim.ownerId],
      sensor_ids: device.sensor_ids,
    });
    await post('/v1/api-keys', { name: `${VICTIM} key`, scopes: ['devices:read'] });
    await post('/v1/applications', {
      name: `${VICTIM} application`,
      scopes: ['devices:read'],
      redirect_uris: [`https://${VICTIM}.example/callback`],
    });
    // A webhook (a public address literal: nothing to resolve) that a reading's event is queued for.
    const webhook = await post('/v1/webhooks', { url: 'https://93.184.216.34/victim-hook', event_types: ['reading.created'] });
    // A threshold the reading below exceeds: an alarm, commented on.
    const threshold = await post('/v1/alarm-thresholds', { sensor_id: device.sensor_ids[0], max: 0, name: `${VICTIM} threshold` });
    // A notification rule telling a person and a group of that alarm (no mail server: recorded as skipped).
    await post('/v1/notification-rules', {
      threshold_id: threshold.id,
      name: `${VICTIM} rule`,
      user_ids: [person.id],
      group_ids: [group.id],
      escalate_after_seconds: 3600,
      escalation_user_ids: [victim.ownerId],
    });
    // Readings, through the device's own token.
    const ingest = await call(app, {
      method: 'POST',
      url: '/v1/ingest',
      token: device.token,
      body: { readings: [{ sensor: `${VICTIM}-temp`, ts: '2024-05-01T00:00:00Z', value: 21.5 }] },
    });
    expect(ingest.statusCode, ingest.body).toBeLessThan(300);

    const attackerDevice = await post(
      '/v1/devices',
      { serial: 'attacker-serial', name: 'attacker fridge', sensors: [{ key: 'temp', kind: 'temperature' }] },
      attacker.adminKey,
    );
    attackerDeviceToken = attackerDevice.token;

    const alarm = await database.db.selectFrom('alarms').select('id').where('organization_id', '=', victim.id).executeTakeFirstOrThrow();
    await post(`/v1/alarms/${alarm.id}/comments`, { body: `${VICTIM} comment` });
    // One logged attempt of that delivery (written here: the address is not reachable from tests).
    const task = await database.db
      .selectFrom('webhook_tasks')
      .select(['id', 'event_id'])
      .where('webhook_id', '=', webhook.id)
      .executeTakeFirstOrThrow();
    const delivery = await logFailedDelivery(database.db, { ...task, webhook_id: webhook.id });

    // The notification worker has recorded the alarm's emails (skipped: no mail server) before the rows are taken.
    const notificationStates = async () =>
      (await database.db.selectFrom('notification_tasks').select('state').where('organization_id', '=', victim.id).execute()).map(
        (t) => t.state,
      );
    for (let waited = 0; (await notificationStates()).includes('pending') && waited < 10_000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await notificationStates()).toEqual(['skipped', 'skipped']);
    victimIds = await organizationIds(database.db, victim.id);
    victimIds.set('webhook_deliveries', new Set([delivery]));
    victimIds.set('user_id', new Set([...(victimIds.get('user_id') ?? []), person.id, victim.ownerId]));
    allVictimIds = [...new Set([...victimIds.values()].flatMap((set) => [...set]))];
    markers = [...allVictimIds, victim.id, victim.slug, VICTIM];
    // SQL access exists only on PostgreSQL; its login name must not reach the attacker either.
    if (database.current.backend === 'postgres') markers.push((await post('/v1/sql-access', {})).username);
    before = await organizationRows(database.db, victim.id);
  });
  afterAll(async () => {
    await app?.close();
  });

  function sample(schema: any, field: string, kindHint?: string): unknown {
    if (!schema || typeof schema !== 'object') return 'x';
    if (schema.anyOf || schema.oneOf) return sample((schema.anyOf ?? schema.oneOf)[0], field, kindHint);
    if (schema.const !== undefined) return schema.const;
    if (schema.enum) return schema.enum[0];
    const type = Array.isArray(schema.type) ? schema.type.find((t: string) => t !== 'null') : schema.type;
    const idKind = /^(.*?)_ids?$/.exec(field)?.[1] ?? kindHint;
    switch (type) {
      case 'object': {
        const out: Record<string, unknown> = {};
        const required: string[] = schema.required ?? [];
        for (const [name, sub] of Object.entries<any>(schema.properties ?? {})) {
          if (required.includes(name) || /_ids?$/.test(name)) out[name] = sample(sub, name);
        }
        return out;
      }
      case 'array':
        return [sample(schema.items, field.replace(/_ids$/, '_id'), idKind)];
      case 'integer':
      case 'number':
        return Math.max(1, schema.minimum ?? 1);
      case 'boolean':
        return true;
      default:
        if (schema.format === 'uuid' || /_id$/.test(field)) return idsOf(idKind)[0] ?? '00000000-0000-4000-8000-000000000000';
        if (schema.format === 'date-time') return '2024-05-01T00:00:00Z';
        if (schema.format === 'email') return 'attacker-made@example.test';
        if (schema.format === 'uri') return 'https://attacker.example/';
        return 'attacker1'.padEnd(schema.minLength ?? 1, 'x');
    }
  }

  /** No marker of the victim in the answer, other than the ids the request itself named. */
  const expectNoLeak = (what: string, body: string, request: string) => {
    const lower = body.toLowerCase();
    for (const marker of markers) {
      if (isUuid(marker) && request.includes(marker)) continue;
      if (lower.includes(marker.toLowerCase()))
        throw new Error(`${what} leaked "${marker}" of the other organization: ${body.slice(0, 500)}`);
    }
  };

  it('walks every /v1 route of the route table with a second organization and leaks nothing', async () => {
    const openapi: any = app.swagger();
    const routes = routeTable(app).filter((r) => r.url.startsWith('/v1/') && r.method !== 'HEAD' && r.method !== 'OPTIONS');
    expect(routes.length).toBeGreaterThan(40);
    const checked: string[] = [];
    const unnamed = new Set<string>();

    for (const principal of [
      { name: 'all-scopes API key', token: attacker.adminKey },
      { name: 'device token', token: attackerDeviceToken },
    ]) {
      for (const route of routes) {
        const operation = openapi.paths[route.url.replace(/:(\w+)/g, '{$1}')]?.[route.method.toLowerCase()];
        const params = [...route.url.matchAll(/:(\w+)/g)].map((m) => m[1]!);
        const segments = route.url.split('/');
        // Candidate paths: each parameter replaced by ids of the victim of the kind its segment names.
        const candidates: string[][] = params.map((param) => {
          const index = segments.indexOf(`:${param}`);
          const kind = param.replace(/Id$/, '').replace(/_id$/, '');
          const named = KIND_BY_SEGMENT[kind] ? kind : segments[index - 1];
          // A parameter of no known kind would be tried with arbitrary ids: it must be named here.
          if (!named || !KIND_BY_SEGMENT[named]) unnamed.add(`${route.url} :${param}`);
          return idsOf(named);
        });
        const paths: string[] = [];
        const fill = (i: number, url: string) => {
          if (i === params.length) return void paths.push(url);
          for (const id of candidates[i]!) fill(i + 1, url.replace(`:${params[i]}`, id));
        };
        fill(0, route.url);

        // Query filters naming ids get the victim's ids.
        const query = new URLSearchParams();
        for (const parameter of operation?.parameters ?? []) {
          if (parameter.in !== 'query') continue;
          const match = /^(.*?)_id(s?)$/.exec(parameter.name);
          if (match) query.set(parameter.name, match[2] ? idsOf(match[1]).join(',') : idsOf(match[1])[0]!);
        }
        const bodySchema = operation?.requestBody?.content?.['application/json']?.schema;
        const body = bodySchema ? sample(bodySchema, '') : undefined;

        for (const path of paths.slice(0, 60)) {
          for (const url of params.length === 0 && query.size > 0 ? [path, `${path}?${query}`] : [path]) {
            const response = await call(app, {
              method: route.method as 'GET',
              url,
              token: principal.token,
              ...(body !== undefined && { body }),
            });
            const what = `${principal.name}: ${route.method} ${url} → ${response.statusCode}`;
            checked.push(what);
            expect(response.statusCode, `${what} ${response.body}`).toBeLessThan(500);
            expectNoLeak(what, response.body, decodeURIComponent(url) + JSON.stringify(body ?? null));
            if (params.length > 0) {
              expect(response.statusCode, `${what}: a path with another organization's id must not succeed`).toBeGreaterThanOrEqual(400);
              if (route.method === 'GET' || route.method === 'DELETE') {
                expect([403, 404], `${what} ${response.body}`).toContain(response.statusCode);
              }
            }
          }
        }
      }
    }
    if (process.env.TENANCY_DEBUG) console.log(checked.join('\n'));
    expect(checked.length).toBeGreaterThan(routes.length);
    expect([...unnamed], 'path parameters without an entry in KIND_BY_SEGMENT').toEqual([]);
    // The victim's rows are exactly as they were.
    expect(await organizationRows(database.db, victim.id)).toEqual(before);
  });

  it('covers the routes of every capability (inventory, people, readings, API keys, applications)', () => {
    const urls = new Set(routeTable(app).map((r) => r.url));
    for (const url of [
      '/v1/devices/:id',
      '/v1/sensors/:id',
      '/v1/users/:id',
      '/v1/invitations/:id',
      '/v1/groups/:id/sensors/:sensorId',
      '/v1/calibrations/:id',
      '/v1/scaling-profiles/:id',
      '/v1/locations/:id',
      '/v1/applications/:id',
      '/v1/applications/:id/rotate-secret',
      '/v1/sql-access',
      '/v1/sql-access/rotate',
    ]) {
      expect(urls.has(url), url).toBe(true);
    }
  });
});
