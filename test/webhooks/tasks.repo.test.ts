import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EventOutbox } from '../../src/events/outbox.js';
import { type ClaimedTask, claimDueTasks, enqueueDeliveries, recordRoutineAttempts } from '../../src/webhooks/tasks.repo.js';
import { seedOrganization } from '../readings/fixtures.js';
import { backends, useDatabase } from '../support/databases.js';

/**
 * The delivery worker's storage: attempts recorded together in one statement (group commit) keep
 * every rule of an attempt recorded alone: a task whose lease was taken over changes nothing, a
 * success resets the subscription's run of failed events, a retry moves the task on.
 */
describe.each(backends)('webhook tasks ($name)', (backend) => {
  const database = useDatabase(backend);

  async function subscriptionWithTasks(count: number, failedEvents: number) {
    const org = await seedOrganization(database.db, `whtask-${Math.random().toString(36).slice(2, 8)}`);
    const hook = await database.db
      .insertInto('webhooks')
      .values({
        organization_id: org.organizationId,
        url: 'https://receiver.example/hook',
        event_types: ['sensor.offline'],
        secret_sealed: 'sealed',
        failed_events: failedEvents,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const outbox = new EventOutbox();
    outbox.addConsumer({ name: 'webhooks', wants: () => true, accept: enqueueDeliveries });
    const drafts = Array.from({ length: count }, (_, n) => ({
      organizationId: org.organizationId,
      type: 'sensor.offline' as const,
      occurredAt: Date.UTC(2026, 0, 1, 0, n),
      data: { n },
    }));
    await database.db.transaction().execute((tx) => outbox.emit(tx, drafts));
    const leaseId = randomUUID();
    const claimed = (await claimDueTasks(database.db, leaseId, 60_000, 1_000)).filter((t) => t.webhookId === hook.id);
    expect(claimed).toHaveLength(count);
    return { webhookId: hook.id, leaseId, claimed };
  }

  const tasks = (webhookId: string) =>
    database.db
      .selectFrom('webhook_tasks')
      .select(['id', 'state', 'attempts', 'schedule_step', 'lease_id', 'next_attempt_at'])
      .where('webhook_id', '=', webhookId)
      .execute();
  const deliveries = (webhookId: string) =>
    database.db
      .selectFrom('webhook_deliveries')
      .select(['task_id', 'attempt', 'status_code', 'error'])
      .where('webhook_id', '=', webhookId)
      .execute();
  const failedEvents = async (webhookId: string) =>
    (await database.db.selectFrom('webhooks').select('failed_events').where('id', '=', webhookId).executeTakeFirstOrThrow()).failed_events;

  it('records a batch of attempts in one statement; a lease lost meanwhile leaves its task alone', async () => {
    const { webhookId, leaseId, claimed } = await subscriptionWithTasks(3, 0);
    const [delivered, retried, takenOver] = claimed as [ClaimedTask, ClaimedTask, ClaimedTask];
    const retryAt = new Date(Date.now() + 60_000);
    await recordRoutineAttempts(database.db, [
      { task: delivered, leaseId, statusCode: 204, error: null, durationMs: 3, outcome: { state: 'delivered' } },
      {
        task: retried,
        leaseId,
        statusCode: null,
        error: 'timed out',
        durationMs: 10,
        outcome: { state: 'pending', nextAttemptAt: retryAt, scheduleStep: 1 },
      },
      // Another worker holds this task now: this worker's late record must not count.
      { task: takenOver, leaseId: randomUUID(), statusCode: 204, error: null, durationMs: 3, outcome: { state: 'delivered' } },
    ]);
    const byId = new Map((await tasks(webhookId)).map((t) => [t.id, t]));
    expect(byId.get(delivered.id)).toMatchObject({ state: 'delivered', attempts: 1, lease_id: null });
    expect(byId.get(retried.id)).toMatchObject({ state: 'pending', attempts: 1, schedule_step: 1, lease_id: null });
    expect(byId.get(retried.id)!.next_attempt_at.getTime()).toBe(retryAt.getTime());
    expect(byId.get(takenOver.id)).toMatchObject({ state: 'pending', attempts: 0, lease_id: leaseId });
    const log = await deliveries(webhookId);
    expect(log.map((d) => [d.task_id, d.attempt, d.status_code, d.error]).sort()).toEqual(
      [
        [delivered.id, 1, 204, null],
        [retried.id, 1, null, 'timed out'],
      ].sort(),
    );
  });

  it('a success resets the run of failed events; a retry alone does not', async () => {
    const { webhookId, leaseId, claimed } = await subscriptionWithTasks(2, 3);
    const [first, second] = claimed as [ClaimedTask, ClaimedTask];
    await recordRoutineAttempts(database.db, [
      {
        task: first,
        leaseId,
        statusCode: 500,
        error: null,
        durationMs: 1,
        outcome: { state: 'pending', nextAttemptAt: new Date(), scheduleStep: 1 },
      },
    ]);
    expect(await failedEvents(webhookId)).toBe(3);
    await recordRoutineAttempts(database.db, [
      { task: second, leaseId, statusCode: 200, error: null, durationMs: 1, outcome: { state: 'delivered' } },
    ]);
    expect(await failedEvents(webhookId)).toBe(0);
  });
});
