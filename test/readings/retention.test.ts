import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_PARTITION_POLICY,
  listReadingPartitions,
  maintainReadingPartitions,
  partitionName,
} from '../../src/readings/partitions.js';
import { enforceReadingsRetention, readingsHorizon } from '../../src/readings/retention.js';
import { backends, useDatabase } from '../support/databases.js';
import { type SeededOrg, addSensor, seedOrganization, store } from './fixtures.js';

/**
 * Readings retention (issue 17, "a per-organization retention period"): each organization's
 * readings and hourly rows older than its period go; months no organization keeps are dropped as
 * whole partitions and not created again; a partition someone is reading is skipped, not waited on.
 */

const DAY = 86_400_000;
const NOW = new Date();
const AGES = [400, 45, 2];

describe.each(backends)('readings retention on $name', (backend) => {
  const database = useDatabase(backend);
  const orgs: Record<'short' | 'forever' | 'defaulted', { org: SeededOrg; sensor: string }> = {} as never;

  const daysKept = async (sensorId: string) => {
    const rows = await database.db.selectFrom('readings').select('ts').where('sensor_id', '=', sensorId).orderBy('ts').execute();
    return rows.map((r) => Math.round((NOW.getTime() - r.ts.getTime()) / DAY));
  };
  const hourlyKept = async (sensorId: string) =>
    (await database.db.selectFrom('readings_hourly').select('bucket').where('sensor_id', '=', sensorId).execute()).length;
  const setPeriod = (org: SeededOrg, days: number | null) =>
    database.db.updateTable('organizations').set({ readings_retention_days: days }).where('id', '=', org.organizationId).execute();

  beforeAll(async () => {
    for (const name of ['short', 'forever', 'defaulted'] as const) {
      const org = await seedOrganization(database.db, `ret-${name}`);
      const sensor = await addSensor(database.db, org, 'kept');
      await store(
        database.db,
        org,
        AGES.map((age) => ({ sensorId: sensor, ts: NOW.getTime() - age * DAY, value: age })),
      );
      orgs[name] = { org, sensor };
    }
    await maintainReadingPartitions(database.db, NOW); // the 400-day-old month moves out of the default partition
    await setPeriod(orgs.short.org, 30);
  });

  it("deletes an organization's readings and hourly rows past its period; one without a period keeps everything, and so do the months", async () => {
    expect(await readingsHorizon(database.db, 0, NOW)).toBeUndefined();
    const result = await enforceReadingsRetention(database.db, { defaultDays: 0, now: NOW, batch: 1 });
    expect(result.droppedPartitions).toEqual([]);
    expect(result.deletedReadings).toBe(2);
    expect(await daysKept(orgs.short.sensor)).toEqual([2]);
    expect(await hourlyKept(orgs.short.sensor)).toBe(1);
    expect(await daysKept(orgs.forever.sensor)).toEqual(AGES);
    expect(await hourlyKept(orgs.forever.sensor)).toBe(3);
    expect(await daysKept(orgs.defaulted.sensor)).toEqual(AGES);
    // Nothing left to do: a second run deletes nothing.
    expect((await enforceReadingsRetention(database.db, { defaultDays: 0, now: NOW })).deletedReadings).toBe(0);
  });

  it("the server's default applies to organizations without a period; months no organization keeps are dropped whole and not created again", async () => {
    const old = partitionName(new Date(NOW.getTime() - 400 * DAY));
    expect((await listReadingPartitions(database.db)).map((p) => p.name)).toContain(old);
    // Periods 30 (own), 10 and 10 (the default): no one keeps anything older than 30 days.
    const horizon = await readingsHorizon(database.db, 10, NOW);
    expect(horizon?.getTime()).toBe(NOW.getTime() - 30 * DAY);

    const result = await enforceReadingsRetention(database.db, { defaultDays: 10, now: NOW });
    expect(await daysKept(orgs.defaulted.sensor)).toEqual([2]);
    expect(await daysKept(orgs.forever.sensor)).toEqual([2]);
    expect(await daysKept(orgs.short.sensor)).toEqual([2]);
    expect(result.droppedPartitions).toContain(old);
    expect(result.busyPartitions).toEqual([]);
    const remaining = (await listReadingPartitions(database.db)).map((p) => p.name);
    for (const dropped of result.droppedPartitions) expect(remaining).not.toContain(dropped);
    // Every month that ends before the horizon is gone; the month the horizon falls in stays.
    expect(remaining).toContain(partitionName(horizon!));
    expect(remaining).not.toContain(partitionName(new Date(horizon!.getTime() - 31 * DAY)));

    const upkeep = await maintainReadingPartitions(database.db, NOW, DEFAULT_PARTITION_POLICY, () => false, horizon);
    expect(upkeep.created.filter((name) => result.droppedPartitions.includes(name))).toEqual([]);
    // Without a horizon (someone keeps forever again) the months are there to take backfills.
    await setPeriod(orgs.forever.org, null);
    expect(await readingsHorizon(database.db, 0, NOW)).toBeUndefined();
  });

  it.runIf(backend.name === 'postgres')(
    'a partition being read is skipped within the lock timeout, and dropped by the next run',
    async () => {
      const sensor = await addSensor(database.db, orgs.short.org, 'busy');
      const month = new Date(Date.UTC(NOW.getUTCFullYear() - 3, 0, 15));
      await store(database.db, orgs.short.org, [{ sensorId: sensor, ts: month.getTime(), value: 1 }]);
      await maintainReadingPartitions(database.db, NOW); // moves that month out of the default partition
      const name = partitionName(month);
      expect((await listReadingPartitions(database.db)).map((p) => p.name)).toContain(name);

      const reader = new pg.Client({ connectionString: database.current.databaseUrl });
      await reader.connect();
      try {
        await reader.query('begin');
        await reader.query(`select count(*) from ${name}`);
        const started = Date.now();
        const busy = await enforceReadingsRetention(database.db, { defaultDays: 10, now: NOW, lockTimeoutMs: 200 });
        expect(busy.busyPartitions).toEqual([name]);
        expect(Date.now() - started).toBeLessThan(5000);
        // The reader was not disturbed: its month is still there to read (its row deleted by the period).
        expect(Number((await reader.query(`select count(*) as n from ${name}`)).rows[0].n)).toBe(0);
        expect(busy.deletedReadings).toBe(1);
      } finally {
        await reader.query('commit');
        await reader.end();
      }
      const next = await enforceReadingsRetention(database.db, { defaultDays: 10, now: NOW });
      expect(next.droppedPartitions).toEqual([name]);
    },
  );
});
