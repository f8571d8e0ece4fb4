import ipaddr from 'ipaddr.js';
import { Agent, request } from 'undici';
import { recordAuditEvent } from '../audit/audit.repo.js';
import { eventBody, messageId, type EventType } from '../events/event-types.js';
import { LeasedTaskPump } from '../jobs/task-pump.js';
import type { SecretBox } from '../security/secret-box.js';
import type { Db } from '../storage/database.js';
import { GroupCommit } from '../storage/group-commit.js';
import type { DeliveryMetrics } from './delivery-metrics.js';
import { isPublicAddress, publicOnlyLookup } from './destination.js';
import { withJitter } from './retry-schedule.js';
import { signatureHeader } from './signing.js';
import {
  type ClaimedTask,
  type RoutineAttempt,
  type TaskOutcome,
  cancelTask,
  claimDueTasks,
  deferTask,
  recordFinalAttempt,
  recordRoutineAttempts,
} from './tasks.repo.js';

export interface DeliverySettings {
  /** Delays after each failed attempt (WEBHOOK_RETRY_SCHEDULE). */
  schedule: readonly number[];
  timeoutMs: number;
  concurrency: number;
  allowPrivate: boolean;
  /** Events in a row failing every attempt before a subscription is disabled (SPEC §8: 5). */
  failedEventsToDisable: number;
}

export interface DeliveryLog {
  error(details: object, message: string): void;
  warn(details: object, message: string): void;
}

/** How long a task waits when this node cannot open its secret (a configuration fault). */
const KEY_FAULT_RETRY_MS = 60_000;
/** Response bodies are read only this far (and then dropped): a receiver cannot make us buffer. */
const MAX_RESPONSE_BYTES = 64 * 1024;
/**
 * Attempts finished together are recorded in one statement: a commit per attempt held the backlog
 * rate near 1,000/s with PostgreSQL a core busy (docs/performance.md, scenario 9).
 */
const RECORD_GROUP_COMMIT = { maxBatch: 200, maxInFlight: 1 };
/**
 * Sends what the outbox recorded, at least once. Each node runs one worker; it wakes when any node
 * commits events (`wake`) and polls every second for retries coming due (jobs/task-pump.ts). It
 * keeps up to `concurrency` attempts in flight, under a lease longer than an attempt can take: a
 * node killed mid-attempt leaves its tasks to be taken over when the lease runs out, with the same
 * `webhook-id` and body, so nothing committed is lost.
 */
export class DeliveryWorker {
  private readonly leaseMs: number;
  private readonly agent: Agent;
  private readonly pump: LeasedTaskPump<ClaimedTask>;
  private readonly routineRecords: GroupCommit<RoutineAttempt>;

  constructor(
    private readonly db: Db,
    private readonly settings: DeliverySettings,
    private readonly secrets: () => SecretBox,
    private readonly log: DeliveryLog,
    private readonly metrics?: DeliveryMetrics,
  ) {
    this.leaseMs = settings.timeoutMs * 2 + 5_000;
    this.agent = new Agent({
      headersTimeout: settings.timeoutMs,
      bodyTimeout: settings.timeoutMs,
      keepAliveTimeout: 4_000,
      ...(settings.allowPrivate ? {} : { connect: { lookup: publicOnlyLookup } }),
    });
    this.pump = new LeasedTaskPump(
      {
        name: 'webhook delivery',
        claim: (leaseId, limit) => claimDueTasks(this.db, leaseId, this.leaseMs, limit),
        attempt: (task, leaseId) => this.attempt(task, leaseId),
      },
      settings.concurrency,
      log,
    );
    this.routineRecords = new GroupCommit((batch) => recordRoutineAttempts(this.db, batch), RECORD_GROUP_COMMIT);
  }

  start(): void {
    this.pump.start();
  }

  /** Stops claiming, lets attempts in flight finish (each within the timeout), closes connections. */
  async stop(): Promise<void> {
    await this.pump.stop();
    await this.agent.close();
  }

  /** New events were committed somewhere. */
  wake(): void {
    this.pump.wake();
  }

  private async attempt(task: ClaimedTask, leaseId: string): Promise<void> {
    try {
      if (!task.enabled) {
        await cancelTask(this.db, task.id, leaseId);
        return;
      }
      const secrets = this.openSecrets(task);
      if (!secrets) {
        // This node's key does not open the secret (SECRETS_KEY differs between nodes, or changed):
        // a fault of the node, not of the receiver. The task waits, counted against nothing.
        this.log.error(
          { webhookId: task.webhookId },
          'webhook secret cannot be decrypted with this server key: is SECRETS_KEY the same on every node and unchanged? Delivery waits.',
        );
        await deferTask(this.db, task.id, leaseId, new Date(Date.now() + KEY_FAULT_RETRY_MS));
        return;
      }
      const started = performance.now();
      const { statusCode, error } = await this.send(task, secrets);
      const durationMs = Math.round(performance.now() - started);
      const attempt = { task, leaseId, statusCode, error, durationMs };
      const outcome = this.outcome(task, statusCode);
      this.metrics?.attempted(outcome.state);
      if (outcome.state === 'delivered' || outcome.state === 'pending') {
        await this.routineRecords.submit({ ...attempt, outcome });
        return;
      }
      const disabled = await this.db.transaction().execute(async (tx) => {
        const change = await recordFinalAttempt(tx, attempt, outcome, this.settings.failedEventsToDisable);
        if (change)
          await recordAuditEvent(tx, {
            organizationId: change.organizationId,
            actor: { kind: 'system', id: null },
            action: 'webhook.disabled',
            target: { type: 'webhook', id: task.webhookId },
            details: { reason: change.reason, status_code: statusCode, event_id: task.eventId },
          });
        return change;
      });
      if (disabled) this.log.warn({ webhookId: task.webhookId, reason: disabled.reason }, 'webhook subscription disabled');
    } catch (error) {
      // The lease runs out and the task is attempted again (by this node or another).
      this.log.warn({ err: error, taskId: task.id }, 'webhook attempt could not be recorded');
    }
  }

  private openSecrets(task: ClaimedTask): string[] | undefined {
    try {
      const box = this.secrets();
      const secrets = [box.open(task.secretSealed, task.webhookId)];
      if (task.previousSecretSealed) secrets.push(box.open(task.previousSecretSealed, task.webhookId));
      return secrets;
    } catch {
      return undefined;
    }
  }

  private outcome(task: ClaimedTask, statusCode: number | null): TaskOutcome {
    if (statusCode !== null && statusCode >= 200 && statusCode < 300) return { state: 'delivered' };
    if (statusCode === 410) return { state: 'gone' };
    const delay = this.settings.schedule[task.scheduleStep];
    if (delay === undefined) return { state: 'failed' };
    return { state: 'pending', nextAttemptAt: new Date(Date.now() + withJitter(delay)), scheduleStep: task.scheduleStep + 1 };
  }

  private async send(task: ClaimedTask, secrets: string[]): Promise<{ statusCode: number | null; error: string | null }> {
    const id = messageId(task.eventId);
    const timestamp = Math.floor(Date.now() / 1000);
    const body = eventBody({
      id: task.eventId,
      organizationId: '',
      type: task.eventType as EventType,
      occurredAt: task.occurredAt,
      data: task.eventData,
    });
    try {
      const url = new URL(task.url);
      const host = url.hostname.replace(/^\[|\]$/g, '');
      // A literal address is connected to without a lookup: check it here.
      if (!this.settings.allowPrivate && ipaddr.isValid(host) && !isPublicAddress(host)) {
        return { statusCode: null, error: 'refused: the destination is not a public address' };
      }
      const response = await request(url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'sensorcloud-webhooks/1',
          'webhook-id': id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signatureHeader(secrets, id, timestamp, body),
        },
        body,
        signal: AbortSignal.timeout(this.settings.timeoutMs),
      });
      await drain(response.body);
      return { statusCode: response.statusCode, error: null };
    } catch (error) {
      return { statusCode: null, error: describe(error) };
    }
  }
}

async function drain(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<void> {
  let read = 0;
  for await (const chunk of body) {
    read += chunk.length;
    if (read > MAX_RESPONSE_BYTES) {
      body.destroy();
      return;
    }
  }
}

function describe(error: unknown): string {
  const e = error as { name?: string; code?: string; message?: string; cause?: { message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timed out';
  const message = e.cause?.message ?? e.message ?? String(error);
  return (e.code ? `${e.code}: ${message}` : message).slice(0, 500);
}
