import { parseSort } from '../api/list-query.js';
import { SENSOR_SORTS, findSensor, listSensors } from '../inventory/sensors.repo.js';
import { bucketsPage, readingsPage } from '../readings/readings.repo.js';
import { isUuid } from '../storage/sql.js';
import { type ConsoleKit, forbidden } from './kit.js';

const PATH = '/console/sensors';
const HOUR = 3_600_000;

/** The chart's range picker: a sensor's last hour, day (the default), week or 30 days. */
export const RANGES: Record<string, { label: string; ms: number }> = {
  '1h': { label: 'Last hour', ms: HOUR },
  '24h': { label: 'Last 24 hours', ms: 24 * HOUR },
  '7d': { label: 'Last 7 days', ms: 7 * 24 * HOUR },
  '30d': { label: 'Last 30 days', ms: 30 * 24 * HOUR },
};

/** Raw readings up to this many; beyond, the chart shows per-bin averages (at most MAX_POINTS bins). */
const MAX_POINTS = 1500;

/** Status of a sensor in the list: its offline period passed without a reading. */
function statusOf(lastReadingAt: Date | null, offlineAfterSeconds: number | null, now: number): 'no data' | 'offline' | 'reporting' {
  if (!lastReadingAt) return 'no data';
  if (offlineAfterSeconds !== null && now - lastReadingAt.getTime() > offlineAfterSeconds * 1000) return 'offline';
  return 'reporting';
}

/**
 * Sensors: the list with each one's latest value and status (refreshed in place by console.js from
 * `latest.json`), and a sensor's page with a uPlot chart of the chosen range that keeps polling
 * `series.json` for what arrives after its last point.
 */
export function registerSensorPages(kit: ConsoleKit): void {
  const { db, readReplica } = kit.services;

  const sensorRows = async (organizationId: string) => {
    const page = await listSensors(db, organizationId, {}, parseSort(undefined, SENSOR_SORTS, 'key'), { limit: 500, after: undefined });
    const now = Date.now();
    return page.items.map((s) => ({
      id: s.id,
      name: s.name ?? s.key,
      key: s.key,
      kind: s.kind,
      unit: s.unit,
      value: s.last_value,
      at: s.last_reading_at?.toISOString() ?? null,
      status: statusOf(s.last_reading_at, s.offline_after_seconds, now),
    }));
  };

  kit.page(PATH, async (caller, _request, reply) => {
    if (!caller.can('devices:read')) return forbidden(kit, caller, reply, 'devices:read');
    return kit.render(reply, caller, 'sensors', { title: 'Sensors', sensors: await sensorRows(caller.organization.id) });
  });

  kit.page(`${PATH}/latest.json`, async (caller, _request, reply) => {
    if (!caller.can('devices:read')) return reply.code(403).send({ error: 'forbidden' });
    return reply.header('cache-control', 'no-store').send({ sensors: await sensorRows(caller.organization.id) });
  });

  kit.page(`${PATH}/:id`, async (caller, request, reply) => {
    if (!caller.can('readings:read')) return forbidden(kit, caller, reply, 'readings:read');
    const { id } = request.params as { id: string };
    const sensor = isUuid(id) ? await findSensor(db, caller.organization.id, id) : undefined;
    if (!sensor) return kit.render(reply, caller, 'message', { title: 'Not found', message: 'That sensor does not exist.' }, 404);
    const requested = (request.query as { range?: string }).range ?? '24h';
    const range = requested in RANGES ? requested : '24h';
    return kit.render(reply, caller, 'sensor', {
      title: sensor.name ?? sensor.key,
      sensor,
      range,
      ranges: RANGES,
      status: statusOf(sensor.last_reading_at, sensor.offline_after_seconds, Date.now()),
    });
  });

  kit.page(`${PATH}/:id/series.json`, async (caller, request, reply) => {
    if (!caller.can('readings:read')) return reply.code(403).send({ error: 'forbidden' });
    const { id } = request.params as { id: string };
    const query = request.query as { range?: string; after?: string };
    const sensor = isUuid(id) ? await findSensor(db, caller.organization.id, id) : undefined;
    if (!sensor) return reply.code(404).send({ error: 'not_found' });
    const now = Date.now();
    const span = (RANGES[query.range ?? '24h'] ?? RANGES['24h']!).ms;
    const after = Number(query.after);
    const from = Number.isFinite(after) && after > now - span ? after + 1 : now - span;
    const organizationId = caller.organization.id;
    // The chart's series may lag like /v1's ranges (the replica); the sensor's status above is the primary's.
    const raw = await readReplica.read((replica) =>
      readingsPage(replica, { organizationId, sensorIds: [sensor.id], from, limit: MAX_POINTS + 1 }),
    );
    let points: [number, number][];
    if (raw.length <= MAX_POINTS) points = raw.map((r) => [r.ts, r.value]);
    else {
      const intervalMs = Math.max(60_000, Math.ceil((now - from) / MAX_POINTS / 1000) * 1000);
      const bins = await readReplica.read((replica) =>
        bucketsPage(replica, { organizationId, sensorIds: [sensor.id], from, intervalMs, limit: MAX_POINTS + 10 }),
      );
      points = bins.items.map((b) => [b.ts, b.sum / b.count]);
    }
    return reply.header('cache-control', 'no-store').send({ unit: sensor.unit, points });
  });
}
