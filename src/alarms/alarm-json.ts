import { ownedBy } from '../api/compound.js';
import { iso } from '../api/kit.js';
import type { ResourceType } from '../api/documents.js';
import { findSensorsByIds } from '../inventory/sensors.repo.js';
import type { Alarm } from './alarms.schema.js';
import { commentsOfAlarms } from './alarms.repo.js';
import { findThresholdsByIds } from './thresholds.repo.js';

/** An alarm in its /v1 form: the API's answers and the `data` of alarm events. */
export const AlarmResource: ResourceType<Alarm> = {
  type: 'alarms',
  id: (row) => row.id,
  path: (row) => `/v1/alarms/${row.id}`,
  attributes: (row) => ({
    kind: row.kind,
    status: row.status,
    severity: row.severity,
    condition: row.condition,
    value: row.value,
    limit: row.limit_value,
    started_at: iso(row.started_at),
    triggered_at: iso(row.triggered_at),
    acknowledged_at: iso(row.acknowledged_at),
    acknowledged_by: row.acknowledged_by,
    resolved_at: iso(row.resolved_at),
    resolved_by: row.resolved_by,
    resolution: row.resolution,
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
    threshold: {
      type: 'alarm-thresholds',
      field: 'threshold_id',
      get: (row) => row.threshold_id,
      related: (row) => (row.threshold_id ? `/v1/alarm-thresholds/${row.threshold_id}` : undefined),
      include: { byIds: findThresholdsByIds },
    },
    comments: {
      type: 'alarm-comments',
      field: 'comment_ids',
      many: true,
      jsonApiOnly: true,
      get: () => undefined,
      related: (row) => `/v1/alarms/${row.id}/comments`,
      include: {
        byOwners: async (db, organizationId, ids, limit) => ownedBy(await commentsOfAlarms(db, organizationId, ids, limit), 'alarm_id'),
      },
    },
  },
};
