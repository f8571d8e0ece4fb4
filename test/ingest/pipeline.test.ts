import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { parseJsonBatch, parseNdjsonBatch } from '../../src/ingest/ingest.parse.js';
import { type CommittedBatch, IngestPipeline, IngestRefusal, type WrittenBatch } from '../../src/ingest/pipeline.js';
import { backends, countRows, useDatabase } from '../support/databases.js';
import { seedOrganization } from '../readings/fixtures.js';

/**
 * The ingest pipeline's seams (issue 12): stages run inside the write's transaction and see the
 * rows stored (not the duplicates); a stage that fails takes the whole batch back with it;
 * after-commit effects learn of the batch once it is durable. Transports (HTTP: test/readings/api.test.ts)
 * only parse and answer.
 */

const batch = (sensorIds: string[], minutes: number[]) =>
  parseJsonBatch(
    minutes.flatMap((m) => sensorIds.map((sensor_id) => ({ sensor_id, ts: new Date(Date.UTC(2026, 0, 1, 0, m)).toISOString(), value: m }))),
    'id',
    10_000,
  ) as Parameters<IngestPipeline['ingest']>[1];

describe.each(backends)('ingest pipeline ($name)', (backend) => {
  const database = useDatabase(backend);

  it('stages see exactly the readings the batch stored, inside its transaction; effects run after the commit', async () => {
    const org = await seedOrganization(database.db, `pipe-${Math.random().toString(36).slice(2, 8)}`);
    const sensors = Object.values(org.sensors).slice(0, 2);
    const pipeline = new IngestPipeline(database.db, 10_000);
    const seen: WrittenBatch[] = [];
    const committed: CommittedBatch[] = [];
    pipeline.addStage({
      name: 'recorder',
      async run(tx, written) {
        seen.push(written);
        // Inside the transaction: the rows are visible to it.
        const { rows } = await sql<{
          n: number;
        }>`select count(*)::int as n from readings where sensor_id = any(${sensors}::uuid[])`.execute(tx);
        expect(rows[0]!.n).toBe(written.readings.length + (seen.length > 1 ? 6 : 0));
      },
    });
    pipeline.afterCommit((done) => committed.push(done));

    const first = await pipeline.ingest({ organizationId: org.organizationId }, batch(sensors, [0, 1, 2]));
    expect(first).toMatchObject({ received: 6, accepted: 6 });
    expect(seen[0]!.readings.map((r) => [r.sensorId, r.ts, r.value, r.rawValue]).sort()).toEqual(
      sensors.flatMap((id) => [0, 1, 2].map((m) => [id, Date.UTC(2026, 0, 1, 0, m), m, m])).sort(),
    );
    expect(seen[0]!.sensors.map((s) => s.sensor.id).sort()).toEqual([...sensors].sort());
    expect(committed[0]).toEqual({ organizationId: org.organizationId, sensorIds: expect.arrayContaining(sensors), accepted: 6 });

    // A resend: the stage sees only what is new.
    const second = await pipeline.ingest({ organizationId: org.organizationId }, batch(sensors, [2, 3]));
    expect(second).toMatchObject({ received: 4, accepted: 2 });
    expect(seen[1]!.readings.map((r) => r.ts)).toEqual([Date.UTC(2026, 0, 1, 0, 3), Date.UTC(2026, 0, 1, 0, 3)]);
  });

  it('a stage that fails takes the batch back: nothing is stored, no effect runs, the caller gets the error', async () => {
    const org = await seedOrganization(database.db, `pipe-${Math.random().toString(36).slice(2, 8)}`);
    const sensor = Object.values(org.sensors)[0]!;
    const pipeline = new IngestPipeline(database.db, 10_000);
    let effects = 0;
    pipeline.addStage({
      name: 'refuses',
      async run() {
        throw new Error('stage failed');
      },
    });
    pipeline.afterCommit(() => effects++);
    const before = await countRows(database.db, 'readings');
    await expect(pipeline.ingest({ organizationId: org.organizationId }, batch([sensor], [10, 11]))).rejects.toThrow('stage failed');
    expect(await countRows(database.db, 'readings')).toBe(before);
    const latest = await database.db.selectFrom('sensor_latest').select('ts').where('sensor_id', '=', sensor).executeTakeFirst();
    expect(latest).toBeUndefined();
    expect(effects).toBe(0);
  });

  it('refuses a whole batch naming every bad reading, before anything is written', async () => {
    const org = await seedOrganization(database.db, `pipe-${Math.random().toString(36).slice(2, 8)}`);
    const sensor = Object.values(org.sensors)[0]!;
    const pipeline = new IngestPipeline(database.db, 10_000);
    const foreign = '00000000-0000-4000-8000-000000000000';
    const before = await countRows(database.db, 'readings');
    const refusal = await pipeline
      .ingest({ organizationId: org.organizationId }, batch([sensor, foreign], [20]))
      .catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(IngestRefusal);
    expect(refusal).toMatchObject({ kind: 'invalid', received: 2, errors: [expect.objectContaining({ pointer: '/body/1/sensor_id' })] });
    expect(await countRows(database.db, 'readings')).toBe(before);
    await expect(pipeline.ingest({ organizationId: org.organizationId }, batch([sensor], []))).rejects.toMatchObject({ kind: 'empty' });
  });

  it('counts invalid readings, not errors: one reading with two bad fields is one invalid reading', async () => {
    const org = await seedOrganization(database.db, `pipe-${Math.random().toString(36).slice(2, 8)}`);
    const sensor = Object.values(org.sensors)[0]!;
    const pipeline = new IngestPipeline(database.db, 10_000);
    const body = [
      JSON.stringify({ sensor_id: sensor, ts: '2026-01-01T00:00:00Z', value: 1 }),
      JSON.stringify({ sensor_id: sensor, ts: 'yesterday', value: 'warm' }),
    ].join('\n');
    const refusal = await pipeline
      .ingest({ organizationId: org.organizationId }, parseNdjsonBatch(body, 'id', 10_000))
      .catch((error: unknown) => error);
    expect(refusal).toMatchObject({ kind: 'invalid', received: 2 });
    expect((refusal as IngestRefusal).errors).toHaveLength(2);
    expect((refusal as IngestRefusal).message).toContain('1 of 2 readings is invalid');
  });
});
