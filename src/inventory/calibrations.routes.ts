import { Type } from 'typebox';
import { guarded as dbGuarded } from '../api/db-errors.js';
import { Nullable, Timestamp, found, iso } from '../api/kit.js';
import type { ResourceType } from '../api/documents.js';
import { resourceRoutes } from '../api/resource-routes.js';
import { HttpProblem } from '../http/problem.js';
import type { App } from '../server/context.js';
import type { AppServices } from '../server/context.js';
import {
  CALIBRATION_SORTS,
  deleteCalibration,
  findCalibration,
  insertCalibration,
  listCalibrations,
  updateCalibration,
} from './calibrations.repo.js';
import type { Calibration } from './inventory.schema.js';
import { findSensorsByIds } from './sensors.repo.js';

export const CalibrationResource: ResourceType<Calibration> = {
  type: 'calibrations',
  id: (row) => row.id,
  path: (row) => `/v1/calibrations/${row.id}`,
  attributes: (row) => ({
    calibrated_at: iso(row.calibrated_at),
    due_at: iso(row.due_at),
    offset: row.offset,
    certificate: row.certificate,
    certificate_url: row.certificate_url,
    performed_by: row.performed_by,
    notes: row.notes,
    active: row.active,
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
  },
};

const Uuid = Type.String({ format: 'uuid' });
const CalibrationJson = Type.Object({
  id: Uuid,
  sensor_id: Uuid,
  calibrated_at: Timestamp(),
  due_at: Nullable(Timestamp()),
  offset: Type.Number(),
  certificate: Nullable(Type.String()),
  certificate_url: Nullable(Type.String()),
  performed_by: Nullable(Type.String()),
  notes: Nullable(Type.String()),
  active: Type.Boolean(),
  created_at: Timestamp(),
  updated_at: Timestamp(),
  links: Type.Object({ self: Type.String({ format: 'uri' }) }),
});

const Editable = {
  calibrated_at: Timestamp('When the sensor was calibrated (RFC 3339).'),
  due_at: Type.Optional(Nullable(Timestamp('When the next calibration is due.'))),
  offset: Type.Optional(Type.Number({ description: 'Added to scaled values at ingest while this calibration is active (default 0).' })),
  certificate: Type.Optional(Nullable(Type.String({ maxLength: 100_000, description: 'Certificate number or text.' }))),
  certificate_url: Type.Optional(Nullable(Type.String({ format: 'uri', maxLength: 2000 }))),
  performed_by: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  notes: Type.Optional(Nullable(Type.String({ maxLength: 10_000 }))),
  active: Type.Optional(
    Type.Boolean({
      description: 'The active calibration is the one applied at ingest; activating one deactivates the previous (default true).',
    }),
  ),
};
const CalibrationCreate = Type.Object({ sensor_id: Uuid, ...Editable }, { additionalProperties: false });
const CalibrationUpdate = Type.Partial(Type.Object(Editable), { additionalProperties: false });

const CONSTRAINTS = {
  unique: { calibrations_active_sensor_key: 'The sensor already has an active calibration.' },
  foreignKey: {
    calibrations_sensor_fk: { pointer: '/body/sensor_id', detail: 'sensor_id does not refer to a sensor of this organization' },
  },
};

function checkDates(calibratedAt: Date, dueAt: Date | null | undefined): void {
  if (dueAt && dueAt < calibratedAt) {
    throw new HttpProblem({
      status: 422,
      detail: 'due_at must not be before calibrated_at.',
      errors: [{ pointer: '/body/due_at', detail: 'due_at must not be before calibrated_at' }],
    });
  }
}

const date = (value: string | null | undefined): Date | null | undefined =>
  value === undefined ? undefined : value === null ? null : new Date(value);

export function registerCalibrationRoutes(app: App, services: AppServices): void {
  const { db } = services;
  const calibrations = resourceRoutes(app, services, {
    path: '/v1/calibrations',
    resource: CalibrationResource,
    schema: CalibrationJson,
    noun: 'calibration',
    tags: ['calibrations'],
    scopes: { read: ['calibrations:read'], write: ['calibrations:write'] },
    relationships: { sensor: 'sensor_id' },
  });

  calibrations.list(
    {
      summary: 'List calibration records',
      sorts: CALIBRATION_SORTS,
      defaultSort: '-calibrated_at',
      filters: {
        sensor_id: Type.Optional(Type.String({ maxLength: 100 })),
        device_id: Type.Optional(Type.String({ maxLength: 100 })),
        active: Type.Optional(Type.Boolean()),
        due_before: Type.Optional(Timestamp('Only calibrations due before this instant.')),
        due_after: Type.Optional(Timestamp('Only calibrations due at or after this instant.')),
      },
    },
    ({ organizationId, query: q, sort, page }) =>
      listCalibrations(
        db,
        organizationId,
        {
          sensorId: q.sensor_id,
          deviceId: q.device_id,
          active: q.active,
          dueBefore: date(q.due_before) ?? undefined,
          dueAfter: date(q.due_after) ?? undefined,
        },
        sort,
        page,
      ),
  );

  calibrations.get({ summary: 'Get a calibration record' }, ({ organizationId, id }) => findCalibration(db, organizationId, id));

  calibrations.create(
    { summary: 'Record a calibration (active by default: its offset applies at ingest)', body: CalibrationCreate },
    async ({ organizationId, body }) => {
      const calibratedAt = new Date(body.calibrated_at);
      const dueAt = date(body.due_at);
      checkDates(calibratedAt, dueAt);
      return dbGuarded(() => insertCalibration(db, organizationId, { ...body, calibrated_at: calibratedAt, due_at: dueAt }), CONSTRAINTS);
    },
  );

  // A partial update is checked against the dates it leaves as they are.
  calibrations.update({ summary: 'Update a calibration record', body: CalibrationUpdate }, async ({ organizationId, id, body }) => {
    const current = found(await findCalibration(db, organizationId, id), 'calibration');
    const calibratedAt = body.calibrated_at === undefined ? undefined : new Date(body.calibrated_at);
    const dueAt = date(body.due_at);
    checkDates(calibratedAt ?? current.calibrated_at, dueAt === undefined ? current.due_at : dueAt);
    return dbGuarded(
      () => updateCalibration(db, organizationId, current.id, { ...body, calibrated_at: calibratedAt, due_at: dueAt }),
      CONSTRAINTS,
    );
  });

  calibrations.remove({ summary: 'Delete a calibration record' }, ({ organizationId, id }) => deleteCalibration(db, organizationId, id));
}
