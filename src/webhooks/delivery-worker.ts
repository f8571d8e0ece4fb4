import { randomUUID } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { Agent, request } from 'undici';
import { eventBody, messageId, type EventType } from '../events/event-types.js';
import type { SecretBox } from '../security/secret-box.js';
import type { Db } from '../storage/database.js';
import { isPublicAddress, publicOnlyLookup } from './destination.js';
import { withJitter } from './retry-schedule.js';
import { signatureHeader } from './signing.js';
import { type ClaimedTask, type TaskOutcome, cancelTask, claimDueTasks, recordAttempt } from './tasks.repo.js';

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
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
}

/** Response bodies are read only this far (and then dropped): a receiver cannot make us buffer. */
const MAX_RESPONSE_BYTES = 64 * 1024;
/** Due retries and expired leases are looked for at least this often without a wake-up. */
const POLL_MS = 1_000;

/**
 * Sends what the outbox recorded, at least once. Each node runs one worker; it wakes when any node
 * commits events (`wake`) and polls every second for retries coming due. It keeps up to
 * `concurrency` attempts in flight, claiming tasks in batches under a lease longer than an
 * attempt can take: a node killed mid-attempt leaves its tasks to be taken over when the lease
 * runs out, with the same `webhook-id` and body, so nothing committed is lost.
 */
export class DeliveryWorker {
  private readonly leaseId = randomUUID();
  private readonly leaseMs: number;
  private readonly agent: Agent;
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private pumping: Promise<void> | undefined;
  private wanted = false;
  /** The last claim found fewer due tasks than it could take: completions need not ask again. */
  private drained = false;
  private stopped = true;

  constructor(
    private readonly db: Db,
    private readonly settings: DeliverySettings,
    private readonly secrets: () => SecretBox,
    private readonly log: DeliveryLog,
  ) {
    this.leaseMs = settings.timeoutMs * 2 + 5_000;
    this.agent = new Agent({
      headersTimeout: settings.timeoutMs,
      bodyTimeout: settings.timeoutMs,
      keepAliveTimeout: 4_000,
      ...(settings.allowPrivate ? {} : { connect: { lookup: publicOnlyLookup } }),
    });
  }

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.wake(), POLL_MS);
    this.timer.unref();
    this.wake();
  }

  /** Stops claiming, lets attempts in flight finish (each within the timeout), closes connections. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.pumping;
    await Promise.allSettled([...this.inFlight]);
    await this.agent.close();
  }

  /** New events were committed somewhere, or it is time to look for due retries. */
  wake(): void {
    this.drained = false;
    this.pump();
  }

  private pump(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.wanted = true;
      return;
    }
    this.pumping = this.fill().finally(() => {
      this.pumping = undefined;
      if (this.wanted) {
        this.wanted = false;
        this.pump();
      }
    });
  }

  private async fill(): Promise<void> {
    try {
      while (!this.stopped) {
        const room = this.settings.concurrency - this.inFlight.size;
        if (room <= 0) return;
        const tasks = await claimDueTasks(this.db, this.leaseId, this.leaseMs, room);
        for (const task of tasks) this.track(this.attempt(task));
        if (tasks.length < room) {
          this.drained = true;
          return;
        }
      }
    } catch (error) {
      this.log.warn({ err: error }, 'webhook delivery could not claim tasks; it retries at its next turn');
    }
  }

  private track(attempt: Promise<void>): void {
    this.inFlight.add(attempt);
    void attempt.finally(() => {
      this.inFlight.delete(attempt);
      // Refill in batches, not one claim per completed attempt.
      if (!this.drained && this.inFlight.size <= this.settings.concurrency / 2) this.pump();
    });
  }

  private async attempt(task: ClaimedTask): Promise<void> {
    try {
      if (!task.enabled) {
        await cancelTask(this.db, task.id, this.leaseId);
        return;
      }
      const started = performance.now();
      const { statusCode, error } = await this.send(task);
      const durationMs = Math.round(performance.now() - started);
      const outcome = this.outcome(task, statusCode);
      const disabled = await recordAttempt(
        this.db,
        { task, leaseId: this.leaseId, statusCode, error, durationMs },
        outcome,
        this.settings.failedEventsToDisable,
      );
      if (disabled) {
        this.log.warn({ webhookId: task.webhookId, reason: disabled }, 'webhook subscription disabled');
      }
    } catch (error) {
      // The lease runs out and the task is attempted again (by this node or another).
      this.log.warn({ err: error, taskId: task.id }, 'webhook attempt could not be recorded');
    }
  }

  private outcome(task: ClaimedTask, statusCode: number | null): TaskOutcome {
    if (statusCode !== null && statusCode >= 200 && statusCode < 300) return { state: 'delivered' };
    if (statusCode === 410) return { state: 'gone' };
    const delay = this.settings.schedule[task.scheduleStep];
    if (delay === undefined) return { state: 'failed' };
    return { state: 'pending', nextAttemptAt: new Date(Date.now() + withJitter(delay)), scheduleStep: task.scheduleStep + 1 };
  }

  private async send(task: ClaimedTask): Promise<{ statusCode: number | null; error: string | null }> {
    const box = this.secrets();
    const secrets = [box.open(task.secretSealed, task.webhookId)];
    if (task.previousSecretSealed) secrets.push(box.open(task.previousSecretSealed, task.webhookId));
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
