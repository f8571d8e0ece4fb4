import type { IngestStage } from '../ingest/pipeline.js';
import type { AlarmService } from './alarms.service.js';
import type { SensorReading } from './evaluate.js';
import type { ThresholdCache } from './threshold-cache.js';
import type { ActiveThreshold } from './thresholds.repo.js';

/**
 * Alarm evaluation at ingest, in the batch's transaction: the readings it stored, for the sensors
 * that have enabled thresholds. Organizations without thresholds are skipped before the batch is
 * written (`appliesTo`), so their batches stay one statement.
 */
export function alarmStage(cache: ThresholdCache, alarms: AlarmService): IngestStage {
  return {
    name: 'alarms',
    appliesTo: async (organizationId) => (await cache.bySensor(organizationId)).size > 0,
    async run(tx, written) {
      const bySensor = await cache.bySensor(written.organizationId, tx);
      const readings = new Map<string, SensorReading[]>();
      const thresholds: ActiveThreshold[] = [];
      for (const reading of written.readings) {
        const watched = bySensor.get(reading.sensorId);
        if (!watched) continue;
        let list = readings.get(reading.sensorId);
        if (!list) {
          list = [];
          readings.set(reading.sensorId, list);
          thresholds.push(...watched);
        }
        list.push({ ts: reading.ts, value: reading.value });
      }
      if (thresholds.length > 0) await alarms.evaluateReadings(tx, thresholds, readings);
    },
  };
}
