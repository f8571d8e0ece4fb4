import { Type } from 'typebox';
import { guarded as dbGuarded } from '../api/db-errors.js';
import type { ResourceType } from '../api/documents.js';
import { Nullable, Timestamp, iso } from '../api/kit.js';
import { resourceRoutes } from '../api/resource-routes.js';
import { HttpProblem } from '../http/problem.js';
import { ownedBy } from '../api/compound.js';
import { findSensorsByIds } from '../inventory/sensors.repo.js';
import { alarmsOfThresholds } from './alarms.repo.js';
import type { App, AppServices } from '../server/context.js';
import { type AlarmThreshold, SEVERITIES } from './alarms.schema.js';
import type { ThresholdCache } from './threshold-cache.js';
import {
  THRESHOLD_SORTS,
  type ThresholdFields,
  deleteThreshold,
  findThreshold,
  insertThreshold,
  listThresholds,
  updateThreshold,
} from './thresholds.repo.js';

export const ThresholdResource: ResourceType<AlarmThreshold> = {
  type: 'alarm-thresholds',
  id: (row) => row.id,
  path: (row) => `/v1/alarm-thresholds/${row.id}`,
  attributes: (row) => ({
    name: row.name,
    min: row.min,
    max: row.max,
    delay_seconds: row.delay_seconds,
    severity: row.severity,
    offline_after_seconds: row.offline_after_seconds,
    enabled: row.enabled,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  }),
  relationships: {
    sensor: {
      type: 'sensors',
      field: 'sensor_id',
      get: (row) => row.sensor_id,
      related: (row) => `/v1/sensors/${row.sensor_id}`,
      include: { byIds: findSensorsByIds },
    },
    alarms: {
      type: 'alarms',
      field: 'alarm_ids',
      many: true,
      jsonApiOnly: true,
      get: () => undefined,
      related: (row) => `/v1/alarms?threshold_id=${row.id}`,
      include: {
        byOwners: async (db, organizationId, ids, limit) =>
          ownedBy(await alarmsOfThresholds(db, organizationId, ids, limit), 'threshold_id'),
      },
    },
  },
};

const Uuid = Type.String({ format: 'uuid' });
export const Severity = Type.Enum([...SEVERITIES]);
const ThresholdJson = Type.Object({
  id: Uuid,
  sensor_id: Uuid,
  name: Nullable(Type.String()),
  min: Nullable(Type.Number()),
  max: Nullable(Type.Number()),
  delay_seconds: Type.Integer(),
  severity: Severity,
  offline_after_seconds: Nullable(Type.Integer()),
  enabled: Type.Boolean(),
  created_at: Timestamp(),
  updated_at: Timestamp(),
  links: Type.Object({ self: Type.String({ format: 'uri' }) }),
});

const WEEK = 7 * 86_400;
const Editable = {
  name: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  min: Type.Optional(Nullable(Type.Number({ description: 'Readings below this are out of range (in the sensor’s reported unit).' }))),
  max: Type.Optional(Nullable(Type.Number({ description: 'Readings above this are out of range.' }))),
  delay_seconds: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: WEEK,
      description: 'Readings must stay out of range this long before the alarm triggers (default 0).',
    }),
  ),
  severity: Type.Optional(Severity),
  offline_after_seconds: Type.Optional(
    Nullable(
      Type.Integer({ minimum: 10, maximum: 30 * 86_400, description: 'Raise an offline alarm when the sensor is silent this long.' }),
    ),
  ),
  enabled: Type.Optional(Type.Boolean()),
};
const ThresholdCreate = Type.Object({ sensor_id: Uuid, ...Editable }, { additionalProperties: false });
const ThresholdUpdate = Type.Partial(Type.Object(Editable), { additionalProperties: false });

const CONSTRAINTS = {
  foreignKey: {
    alarm_thresholds_sensor_fk: { pointer: '/body/sensor_id', detail: 'sensor_id does not refer to a sensor of this organization' },
  },
};

function checked(fields: ThresholdFields): ThresholdFields {
  const problem = (detail: string, pointer: string) => new HttpProblem({ status: 422, detail, errors: [{ pointer, detail }] });
  if (fields.min === null && fields.max === null && fields.offline_after_seconds === null) {
    throw problem('A threshold needs min, max or offline_after_seconds.', '/body/min');
  }
  if (fields.min !== null && fields.max !== null && fields.min > fields.max) throw problem('min must not be above max.', '/body/min');
  return fields;
}

export function registerThresholdRoutes(app: App, services: AppServices, cache: ThresholdCache): void {
  const { db } = services;
  const thresholds = resourceRoutes(app, services, {
    path: '/v1/alarm-thresholds',
    resource: ThresholdResource,
    schema: ThresholdJson,
    noun: 'alarm threshold',
    tags: ['alarms'],
    scopes: { read: ['alarms:read'], write: ['alarms:write'] },
    relationships: { sensor: 'sensor_id' },
  });

  thresholds.list(
    {
      summary: 'List alarm thresholds',
      sorts: THRESHOLD_SORTS,
      defaultSort: 'created_at',
      filters: {
        sensor_id: Type.Optional(Type.String({ maxLength: 100 })),
        enabled: Type.Optional(Type.Boolean()),
        severity: Type.Optional(Severity),
      },
    },
    ({ organizationId, query, sort, page }) =>
      listThresholds(db, organizationId, { sensorId: query.sensor_id, enabled: query.enabled, severity: query.severity }, sort, page),
  );

  thresholds.get({ summary: 'Get an alarm threshold' }, ({ organizationId, id }) => findThreshold(db, organizationId, id));

  thresholds.create(
    { summary: 'Watch a sensor: a range (min/max, delay), an offline period, or both', body: ThresholdCreate },
    async ({ organizationId, body }) => {
      const fields = checked({
        sensor_id: body.sensor_id,
        name: body.name ?? null,
        min: body.min ?? null,
        max: body.max ?? null,
        delay_seconds: body.delay_seconds ?? 0,
        severity: body.severity ?? 'warning',
        offline_after_seconds: body.offline_after_seconds ?? null,
        enabled: body.enabled ?? true,
      });
      const row = await dbGuarded(() => insertThreshold(db, organizationId, fields), CONSTRAINTS);
      cache.forget(organizationId);
      return row;
    },
  );

  thresholds.update(
    { summary: 'Change an alarm threshold (a changed range is evaluated afresh; open alarms stay)', body: ThresholdUpdate },
    async ({ organizationId, id, body }) => {
      const current = await findThreshold(db, organizationId, id);
      if (!current) return undefined;
      const fields = checked({
        sensor_id: current.sensor_id,
        name: body.name === undefined ? current.name : body.name,
        min: body.min === undefined ? current.min : body.min,
        max: body.max === undefined ? current.max : body.max,
        delay_seconds: body.delay_seconds ?? current.delay_seconds,
        severity: body.severity ?? current.severity,
        offline_after_seconds: body.offline_after_seconds === undefined ? current.offline_after_seconds : body.offline_after_seconds,
        enabled: body.enabled ?? current.enabled,
      });
      const row = await updateThreshold(db, organizationId, id, fields);
      cache.forget(organizationId);
      return row;
    },
  );

  thresholds.remove({ summary: 'Delete an alarm threshold (its alarms and their history stay)' }, async ({ organizationId, id }) => {
    const removed = await deleteThreshold(db, organizationId, id);
    cache.forget(organizationId);
    return removed;
  });
}
