import type { IResolvers, MercuriusContext, MercuriusLoaders } from 'mercurius';
import { pageRequest, parseSort } from '../api/list-query.js';
import { AlarmResource } from '../alarms/alarm-json.js';
import { ALARM_SORTS, listAlarms } from '../alarms/alarms.repo.js';
import type { AlarmStatus } from '../alarms/alarms.schema.js';
import type { Principal } from '../auth/principal.js';
import { MeResource, OrganizationResource } from '../identity/me.routes.js';
import { findMemberView } from '../identity/members.repo.js';
import { findOrganizationById } from '../identity/organizations.repo.js';
import type { Scope } from '../identity/scopes.js';
import { DeviceResource } from '../inventory/devices.routes.js';
import { DEVICE_SORTS, findDevice, findDevicesByIds, listDevices } from '../inventory/devices.repo.js';
import { SENSOR_SORTS, findSensor, findSensorsByIds, listSensors, sensorsOfDevices } from '../inventory/sensors.repo.js';
import { SensorResource } from '../inventory/sensors.routes.js';
import { parseRange } from '../readings/range.js';
import { type Aggregate, aggregateOf, bucketsPage, readingsPage, sensorsOfOrganization } from '../readings/readings.repo.js';
import { finite } from '../readings/reading-json.js';
import { formatTime } from '../readings/time.js';
import type { Db } from '../storage/database.js';
import type { ReadReplica } from '../storage/read-replica.js';
import { type Page, type Sort, encodeCursor, sortKey } from '../storage/keyset.js';
import { badUserInput, forbidden, graphError } from './errors.js';
import { graphNode } from './representation.js';

/**
 * Resolvers over the same repositories as /v1, in the caller's organization only. Lists are
 * keyset pages like every /v1 list; `Device.sensors`, `Sensor.device` and `Alarm.sensor` are
 * mercurius loaders (one statement for every parent of a query level), and a sensor's latest
 * reading comes with the sensor's row: `devices { sensors { latestReading } }` is two statements
 * whatever the number of devices.
 */

export interface GraphContext extends MercuriusContext {
  principal: Principal;
  db: Db;
  /** Ranges and bins of readings, as /v1 reads them (storage/read-replica.ts). */
  readReplica: ReadReplica;
  publicUrl: string;
  log: { error(details: object, message: string): void };
}

const MAX_FIRST = 1000;

function need(ctx: GraphContext, scope: Scope): void {
  if (!ctx.principal.scopes.has(scope)) throw forbidden(scope);
}

function pageSize(first: number | null | undefined): number {
  const size = first ?? 100;
  if (!Number.isInteger(size) || size < 1 || size > MAX_FIRST) throw badUserInput(`first must be between 1 and ${MAX_FIRST}.`, 'first');
  return size;
}

/** A Relay connection of a keyset page; each edge's cursor resumes right after it. */
function connection<Row extends { id: string }>(page: Page<Row>, sort: Sort, node: (row: Row) => unknown) {
  const property = sort.column.split('.').pop() as string;
  const cursorOf = (row: Row) => encodeCursor(sortKey((row as Record<string, unknown>)[property], row.id));
  const edges = page.items.map((row) => ({ node: node(row), cursor: cursorOf(row) }));
  return { edges, pageInfo: { hasNextPage: page.nextCursor !== undefined, endCursor: edges.at(-1)?.cursor ?? null } };
}

/** Runs a resolver, turning what the shared code throws into GraphQL errors with their codes. */
function resolver<Args, Result>(run: (args: Args, ctx: GraphContext) => Promise<Result>) {
  return async (_parent: unknown, args: Args, ctx: GraphContext): Promise<Result> => {
    try {
      return await run(args, ctx);
    } catch (error) {
      throw graphError(error, ctx.log);
    }
  };
}

type ListArgs = { first?: number | null; after?: string | null };
/** A page of a root list: `first` and `after` decoded as /v1 decodes `limit` and `cursor`. */
const keysetPage = ({ first, after }: ListArgs) => pageRequest({ limit: pageSize(first), cursor: after ?? undefined });

export const resolvers: IResolvers<unknown, GraphContext> = {
  Query: {
    me: resolver(async (_args, ctx) => {
      const { principal, db } = ctx;
      const organization = await findOrganizationById(db, principal.organizationId);
      const member = principal.userId ? await findMemberView(db, principal.organizationId, principal.userId) : undefined;
      return graphNode(ctx.publicUrl, MeResource, { principal, organization: organization!, member });
    }),
    organization: resolver(async (_args, ctx) => {
      const organization = await findOrganizationById(ctx.db, ctx.principal.organizationId);
      return graphNode(ctx.publicUrl, OrganizationResource, organization!);
    }),
    devices: resolver(async (args: ListArgs, ctx) => {
      need(ctx, 'devices:read');
      const sort = parseSort(undefined, DEVICE_SORTS, 'name');
      const page = await listDevices(ctx.db, ctx.principal.organizationId, {}, sort, keysetPage(args));
      return connection(page, sort, (row) => graphNode(ctx.publicUrl, DeviceResource, row));
    }),
    device: resolver(async ({ id }: { id: string }, ctx) => {
      need(ctx, 'devices:read');
      const row = await findDevice(ctx.db, ctx.principal.organizationId, id);
      return row ? graphNode(ctx.publicUrl, DeviceResource, row) : null;
    }),
    sensors: resolver(async (args: ListArgs & { deviceId?: string | null }, ctx) => {
      need(ctx, 'devices:read');
      const sort = parseSort(undefined, SENSOR_SORTS, 'key');
      const filter = args.deviceId ? { deviceId: args.deviceId } : {};
      const page = await listSensors(ctx.db, ctx.principal.organizationId, filter, sort, keysetPage(args));
      return connection(page, sort, (row) => graphNode(ctx.publicUrl, SensorResource, row));
    }),
    sensor: resolver(async ({ id }: { id: string }, ctx) => {
      need(ctx, 'devices:read');
      const row = await findSensor(ctx.db, ctx.principal.organizationId, id);
      return row ? graphNode(ctx.publicUrl, SensorResource, row) : null;
    }),
    readings: resolver(
      async (
        args: ListArgs & {
          sensorId: string;
          from?: string | null;
          to?: string | null;
          interval?: string | null;
          aggregate?: Aggregate | null;
        },
        ctx,
      ) => {
        need(ctx, 'readings:read');
        const range = parseRange({
          from: args.from ?? undefined,
          to: args.to ?? undefined,
          interval: args.interval ?? undefined,
          aggregate: args.aggregate ?? undefined,
          limit: pageSize(args.first),
          cursor: args.after ?? undefined,
        });
        const organizationId = ctx.principal.organizationId;
        // Another organization's sensor reads as one without readings, never as a different answer.
        // Asked of the primary, like /v1: the replica may not know a sensor created a moment ago.
        const owned = await sensorsOfOrganization(ctx.db, organizationId, [args.sensorId]);
        if (owned.size === 0) return { edges: [], pageInfo: { hasNextPage: false, endCursor: null } };
        const sensorIds = [...owned];
        const edgeOf = (sensorId: string, ts: number, node: Record<string, unknown>) => ({
          node: { sensorId, ts: formatTime(ts), ...node },
          cursor: encodeCursor([sensorId, ts]),
        });
        const { intervalMs } = range;
        if (intervalMs !== undefined) {
          const { items, more } = await ctx.readReplica.read((db) => bucketsPage(db, { organizationId, sensorIds, ...range, intervalMs }));
          const edges = items.map((b) => edgeOf(b.sensorId, b.ts, { value: finite(aggregateOf(b, range.aggregate)), count: b.count }));
          return { edges, pageInfo: { hasNextPage: more, endCursor: edges.at(-1)?.cursor ?? null } };
        }
        const rows = await ctx.readReplica.read((db) => readingsPage(db, { organizationId, sensorIds, ...range }));
        const edges = rows
          .slice(0, range.limit)
          .map((r) => edgeOf(r.sensorId, r.ts, { value: finite(r.value), rawValue: finite(r.rawValue), count: null }));
        return { edges, pageInfo: { hasNextPage: rows.length > range.limit, endCursor: edges.at(-1)?.cursor ?? null } };
      },
    ),
    alarms: resolver(async (args: ListArgs & { status?: AlarmStatus | null }, ctx) => {
      need(ctx, 'alarms:read');
      const sort = parseSort(undefined, ALARM_SORTS, '-triggered_at');
      const filter = args.status ? { status: [args.status] } : {};
      const page = await listAlarms(ctx.db, ctx.principal.organizationId, filter, sort, keysetPage(args));
      return connection(page, sort, (row) => graphNode(ctx.publicUrl, AlarmResource, row));
    }),
  },
  Sensor: {
    latestReading: (parent: unknown, _args: unknown, ctx: GraphContext) => {
      need(ctx, 'readings:read');
      const sensor = parent as Record<string, unknown>;
      if (sensor.lastReadingAt === null || sensor.lastReadingAt === undefined) return null;
      return { sensorId: sensor.id, ts: sensor.lastReadingAt, value: sensor.lastValue, rawValue: sensor.lastRawValue, count: null };
    },
  },
};

type Parent = { obj: Record<string, unknown> };

/** A loader whose failures become GraphQL errors with their codes, as resolver() does for fields. */
function batched(load: (queries: Parent[], ctx: GraphContext) => Promise<unknown[]>) {
  return async (queries: Parent[], ctx: GraphContext) => {
    try {
      return await load(queries, ctx);
    } catch (error) {
      throw graphError(error, ctx.log);
    }
  };
}

/** Batched relations: one statement per relation and query level, whatever the number of parents. */
export const loaders: MercuriusLoaders<GraphContext> = {
  Device: {
    sensors: batched(async (queries, ctx) => {
      const rows = await sensorsOfDevices(
        ctx.db,
        ctx.principal.organizationId,
        queries.map((q) => q.obj.id as string),
      );
      const byDevice = new Map<string, unknown[]>();
      for (const row of rows) {
        const list = byDevice.get(row.device_id) ?? [];
        list.push(graphNode(ctx.publicUrl, SensorResource, row));
        byDevice.set(row.device_id, list);
      }
      return queries.map((q) => byDevice.get(q.obj.id as string) ?? []);
    }),
  },
  Sensor: {
    device: batched(async (queries, ctx) => {
      const rows = await findDevicesByIds(
        ctx.db,
        ctx.principal.organizationId,
        queries.map((q) => q.obj.deviceId as string),
      );
      const byId = new Map(rows.map((row) => [row.id, graphNode(ctx.publicUrl, DeviceResource, row)]));
      return queries.map((q) => byId.get(q.obj.deviceId as string) ?? null);
    }),
  },
  Alarm: {
    sensor: batched(async (queries, ctx) => {
      const rows = await findSensorsByIds(
        ctx.db,
        ctx.principal.organizationId,
        queries.map((q) => q.obj.sensorId as string),
      );
      const byId = new Map(rows.map((row) => [row.id, graphNode(ctx.publicUrl, SensorResource, row)]));
      return queries.map((q) => byId.get(q.obj.sensorId as string) ?? null);
    }),
  },
};
