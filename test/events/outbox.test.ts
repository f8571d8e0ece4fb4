import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { type StoredEvent, eventBody, messageId } from '../../src/events/event-types.js';
import { purgeEvents } from '../../src/events/events.repo.js';
import { EventOutbox } from '../../src/events/outbox.js';
import { parseJsonBatch } from '../../src/ingest/ingest.parse.js';
import { IngestPipeline } from '../../src/ingest/pipeline.js';
import { readingCreatedStage } from '../../src/readings/reading-created.js';
import { INVALIDATION_CHANNEL, type Invalidation, InvalidationListener } from '../../src/storage/invalidations.js';
import { seedOrganization } from '../readings/fixtures.js';
import { backends, countRows, useDatabase } from '../support/databases.js';

/**
 * The transactional outbox (issue 13's seam): events exist exactly when the change that raised
 * them does, consumers record their work in the same transaction, and the commit (never before)
 * wakes the workers on every node.
 */

const silent = { warn() {} };

describe.each(backends)('event outbox ($name)', (backend) => {
  const database = useDatabase(backend);
  const slug = () => `evt-${Math.random().toString(36).slice(2, 8)}`;

  it('stores events and lets consumers record their work in the producer’s transaction; a rollback leaves neither', async () => {
    const org = await seedOrganization(database.db, slug());
    const outbox = new EventOutbox();
    const accepted: StoredEvent[][] = [];
    outbox.addConsumer({
      name: 'recorder',
      wants: () => true,
      async accept(tx, events) {
        // Inside the transaction: the events are visible to it.
        const { rows } = await sql<{
          n: number;
        }>`select count(*)::int as n from events where id = any(${events.map((e) => e.id)}::uuid[])`.execute(tx);
        expect(rows[0]!.n).toBe(events.length);
        accepted.push([...events]);
      },
    });
    const draft = {
      organizationId: org.organizationId,
      type: 'sensor.offline' as const,
      occurredAt: Date.UTC(2026, 0, 2, 3, 4, 5, 678),
      data: { id: 'x', n: 1 },
    };

    const events = await database.db.transaction().execute((tx) => outbox.emit(tx, [draft, { ...draft, data: { id: 'y' } }]));
    expect(events).toHaveLength(2);
    expect(accepted[0]!.map((e) => e.id)).toEqual(events.map((e) => e.id));
    const stored = await database.db.selectFrom('events').selectAll().where('organization_id', '=', org.organizationId).execute();
    const byDataId = (row: (typeof stored)[number]) => (row.data as { id: string }).id;
    expect(
      stored.sort((a, b) => byDataId(a).localeCompare(byDataId(b))).map((row) => [row.type, row.data, row.occurred_at.toISOString()]),
    ).toEqual([
      ['sensor.offline', { id: 'x', n: 1 }, '2026-01-02T03:04:05.678Z'],
      ['sensor.offline', { id: 'y' }, '2026-01-02T03:04:05.678Z'],
    ]);

    const before = await countRows(database.db, 'events');
    await expect(
      database.db.transaction().execute(async (tx) => {
        await outbox.emit(tx, [draft]);
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    expect(await countRows(database.db, 'events')).toBe(before);
  });

  it('the delivery body and webhook-id are stable for an event', () => {
    const event: StoredEvent = {
      id: '0b9a8e6c-1f0e-4c4e-9a43-6f1f2f0d9e11',
      organizationId: 'o',
      type: 'alarm.triggered',
      occurredAt: Date.UTC(2026, 11, 5, 3, 0, 0),
      data: { id: 'a1', sensor_id: 's1' },
    };
    expect(messageId(event.id)).toBe('msg_0b9a8e6c1f0e4c4e9a436f1f2f0d9e11');
    expect(JSON.parse(eventBody(event))).toEqual({
      type: 'alarm.triggered',
      timestamp: '2026-12-05T03:00:00.000Z',
      data: { id: 'a1', sensor_id: 's1' },
    });
    expect(eventBody(event)).toBe(eventBody({ ...event }));
  });

  it('reading.created: raised per stored reading only where a consumer wants it; elsewhere ingest stays one statement', async () => {
    const wanted = await seedOrganization(database.db, slug());
    const unwanted = await seedOrganization(database.db, slug());
    const outbox = new EventOutbox();
    outbox.addConsumer({
      name: 'subscriptions',
      wants: (org, type) => org === wanted.organizationId && type === 'reading.created',
      accept: async () => {},
    });
    const pipeline = new IngestPipeline(database.db, 10_000);
    pipeline.addStage(readingCreatedStage(outbox));
    const ingest = (org: typeof wanted, minutes: number[]) => {
      const sensor_id = Object.values(org.sensors)[0]!;
      const readings = minutes.map((m) => ({ sensor_id, ts: new Date(Date.UTC(2026, 0, 1, 0, m)).toISOString(), value: m }));
      return pipeline.ingest({ organizationId: org.organizationId }, parseJsonBatch(readings, 'id', 10_000) as never);
    };

    await ingest(wanted, [0, 1]);
    await ingest(wanted, [1, 2]); // the resent reading raises nothing
    await ingest(unwanted, [0, 1]);
    const events = await database.db
      .selectFrom('events')
      .select(['organization_id', 'type', 'data'])
      .where('organization_id', 'in', [wanted.organizationId, unwanted.organizationId])
      .execute();
    const sensor = Object.values(wanted.sensors)[0]!;
    expect(events.map((e) => e.data).sort((a, b) => String((a as { ts: string }).ts).localeCompare((b as { ts: string }).ts))).toEqual(
      [0, 1, 2].map((m) => ({ sensor_id: sensor, ts: new Date(Date.UTC(2026, 0, 1, 0, m)).toISOString(), value: m, raw_value: m })),
    );
    expect(new Set(events.map((e) => e.organization_id))).toEqual(new Set([wanted.organizationId]));
  });

  it('wakes listeners only when the transaction commits', async () => {
    const heard: Invalidation[] = [];
    const listener = new InvalidationListener(database.current.databaseUrl, silent, database.db);
    listener.on((invalidation) => heard.push(invalidation));
    await listener.start();
    try {
      const org = await seedOrganization(database.db, slug());
      const outbox = new EventOutbox();
      await database.db.transaction().execute(async (tx) => {
        await outbox.emit(tx, [{ organizationId: org.organizationId, type: 'calibration.due', occurredAt: Date.now(), data: {} }]);
        await new Promise((resolve) => setTimeout(resolve, 100));
        expect(heard.filter((i) => i.kind === 'events')).toHaveLength(0);
      });
      await expect.poll(() => heard.filter((i) => i.kind === 'events').length, { timeout: 5_000 }).toBe(1);
      // Damaged messages on the channel are ignored.
      await sql`select pg_notify(${INVALIDATION_CHANNEL}, 'not json')`.execute(database.db);
    } finally {
      await listener.stop();
    }
  });

  it('retention purges events older than the cut-off only', async () => {
    const org = await seedOrganization(database.db, slug());
    const outbox = new EventOutbox();
    await database.db
      .transaction()
      .execute((tx) =>
        outbox.emit(tx, [{ organizationId: org.organizationId, type: 'calibration.due', occurredAt: Date.now(), data: {} }]),
      );
    await sql`update events set created_at = now() - interval '40 days' where organization_id = ${org.organizationId}`.execute(database.db);
    await database.db
      .transaction()
      .execute((tx) =>
        outbox.emit(tx, [{ organizationId: org.organizationId, type: 'calibration.due', occurredAt: Date.now(), data: { fresh: true } }]),
      );
    expect(await purgeEvents(database.db, new Date(Date.now() - 30 * 86_400_000))).toBeGreaterThanOrEqual(1);
    const left = await database.db.selectFrom('events').select('data').where('organization_id', '=', org.organizationId).execute();
    expect(left.map((e) => e.data)).toEqual([{ fresh: true }]);
  });
});
