import { describe, expect, it } from 'vitest';
import { alarmStage } from '../../src/alarms/alarm-stage.js';
import { AlarmService } from '../../src/alarms/alarms.service.js';
import { ThresholdCache } from '../../src/alarms/threshold-cache.js';
import { insertThreshold } from '../../src/alarms/thresholds.repo.js';
import { EventOutbox } from '../../src/events/outbox.js';
import { parseJsonBatch } from '../../src/ingest/ingest.parse.js';
import { IngestPipeline } from '../../src/ingest/pipeline.js';
import { seedOrganization } from '../readings/fixtures.js';
import { backends, useDatabase } from '../support/databases.js';

/**
 * The alarm stage inside the batch's transaction never goes around it for data: on the embedded
 * database the transaction holds the one connection, so a query through the pool would wait for
 * the transaction forever. A threshold cache whose entries expire at once makes every batch
 * refresh it between `appliesTo` and `run`, the moment a batch once hung.
 */
describe.each(backends)('alarm stage ($name)', (backend) => {
  const database = useDatabase(backend);

  it('evaluates batches whatever the cache does in between, and raises the alarm', async () => {
    const org = await seedOrganization(database.db, `stage-${Math.random().toString(36).slice(2, 8)}`);
    const sensorId = org.sensors.temp!;
    await insertThreshold(database.db, org.organizationId, {
      sensor_id: sensorId,
      name: null,
      min: null,
      max: 8,
      delay_seconds: 0,
      severity: 'warning',
      offline_after_seconds: null,
      enabled: true,
    });
    const pipeline = new IngestPipeline(database.db, 10_000);
    pipeline.addStage(alarmStage(new ThresholdCache(database.db, 0), new AlarmService(database.db, new EventOutbox(), 'https://x.test')));
    for (const [minute, value] of [
      [0, 5],
      [1, 9],
    ] as const) {
      const batch = parseJsonBatch(
        [{ sensor_id: sensorId, ts: new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString(), value }],
        'id',
        10_000,
      );
      const outcome = await Promise.race([
        pipeline.ingest({ organizationId: org.organizationId }, batch as never),
        new Promise((_, reject) => setTimeout(() => reject(new Error('the batch hung')), 10_000)),
      ]);
      expect(outcome).toMatchObject({ accepted: 1 });
    }
    const alarms = await database.db.selectFrom('alarms').select(['status', 'value']).where('sensor_id', '=', sensorId).execute();
    expect(alarms).toEqual([{ status: 'active', value: 9 }]);
  });
});
