import { randomUUID } from 'node:crypto';
import { absoluteUrl } from '../api/links.js';
import type { Db } from '../storage/database.js';
import { composeEmail } from './email.js';
import { type Mailer, describeMailError, isPermanentRefusal } from './mailer.js';
import { quietUntil } from './quiet-hours.js';
import { type ClaimedNotification, type NotificationOutcome, claimDueNotifications, recordOutcome } from './tasks.repo.js';
import { unsubscribeToken } from './unsubscribe.js';

export interface NotificationSettings {
  publicUrl: string;
  concurrency: number;
  /** Permanent (5xx) refusals of one email before it is given up. */
  permanentFailuresToGiveUp: number;
  /** Attempts of one email, whatever failed, before it is given up (an outage of days). */
  maxAttempts: number;
  /** First retry delay, doubled after each failure up to `maxRetryMs`. */
  firstRetryMs: number;
  maxRetryMs: number;
}

export interface NotificationLog {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
}

/** Due tasks and expired leases are looked for at least this often without a wake-up. */
const POLL_MS = 1_000;
/** Longer than an attempt can take (connection, greeting and socket timeouts of the mailer). */
const LEASE_MS = 60_000;

/**
 * Sends what the outbox and the periodic check recorded, at least once, like the webhook delivery
 * worker: woken when any node commits events, polling every second; tasks claimed in batches
 * under a lease, so a node that dies mid-send leaves its tasks to be taken over. A mail server
 * that is down or answers 4xx is tried again with a growing delay; a few 5xx refusals end the
 * task. Without a mailer (no SMTP_URL) every task is recorded as skipped.
 */
export class NotificationWorker {
  private readonly leaseId = randomUUID();
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private pumping: Promise<void> | undefined;
  private wanted = false;
  private drained = false;
  private stopped = true;

  constructor(
    private readonly db: Db,
    private readonly settings: NotificationSettings,
    private readonly mailer: Mailer | undefined,
    private readonly unsubscribeKey: () => Buffer,
    private readonly log: NotificationLog,
  ) {}

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.wake(), POLL_MS);
    this.timer.unref();
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.pumping;
    await Promise.allSettled([...this.inFlight]);
    this.mailer?.close();
  }

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
        const tasks = await claimDueNotifications(this.db, this.leaseId, LEASE_MS, room);
        for (const task of tasks) this.track(this.attempt(task));
        if (tasks.length < room) {
          this.drained = true;
          return;
        }
      }
    } catch (error) {
      this.log.warn({ err: error }, 'notifications could not claim tasks; they retry at the next turn');
    }
  }

  private track(attempt: Promise<void>): void {
    this.inFlight.add(attempt);
    void attempt.finally(() => {
      this.inFlight.delete(attempt);
      if (!this.drained && this.inFlight.size <= this.settings.concurrency / 2) this.pump();
    });
  }

  private async attempt(task: ClaimedNotification): Promise<void> {
    try {
      const outcome = await this.decide(task);
      await recordOutcome(this.db, task, this.leaseId, outcome);
      if (outcome.state === 'failed') {
        this.log.warn({ taskId: task.id, alarmId: task.alarmId, error: outcome.error }, 'notification email given up');
      }
    } catch (error) {
      // The lease runs out and the task is attempted again (by this node or another).
      this.log.warn({ err: error, taskId: task.id }, 'notification outcome could not be recorded');
    }
  }

  private async decide(task: ClaimedNotification): Promise<NotificationOutcome> {
    if (!task.member) return { state: 'skipped', reason: 'no longer an active member of the organization' };
    if ((task.reason === 'repeat' || task.reason === 'escalation') && task.alarm.status !== 'active') {
      return { state: 'cancelled', reason: `the alarm was ${task.alarm.status}` };
    }
    if (!task.emailEnabled) return { state: 'skipped', reason: 'email notifications are off for this person' };
    if (!this.mailer) return { state: 'skipped', reason: 'email is off on this server (no SMTP_URL)' };
    if (task.alarm.severity !== 'critical' && task.quietHours) {
      const until = quietUntil(task.quietHours, new Date());
      if (until) return { state: 'held', until };
    }
    const unsubscribeUrl = absoluteUrl(
      this.settings.publicUrl,
      `/notifications/unsubscribe?token=${encodeURIComponent(unsubscribeToken(this.unsubscribeKey(), task.userId))}`,
    );
    const email = composeEmail(task, { publicUrl: this.settings.publicUrl, unsubscribeUrl });
    try {
      await this.mailer.send({
        to: task.email,
        ...email,
        headers: {
          'List-Unsubscribe': `<${unsubscribeUrl}>`,
          'X-Sensorcloud-Alarm': task.alarmId,
          'X-Sensorcloud-Notification': task.id,
        },
      });
      return { state: 'sent' };
    } catch (error) {
      const permanent = isPermanentRefusal(error);
      const message = describeMailError(error);
      const attempts = task.attempts + 1;
      if ((permanent && task.permanentFailures + 1 >= this.settings.permanentFailuresToGiveUp) || attempts >= this.settings.maxAttempts) {
        return { state: 'failed', error: message, permanent };
      }
      const delay = Math.min(this.settings.firstRetryMs * 2 ** (attempts - 1), this.settings.maxRetryMs);
      return { state: 'retry', at: new Date(Date.now() + delay * (0.9 + Math.random() * 0.2)), error: message, permanent };
    }
  }
}
