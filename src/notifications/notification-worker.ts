import { absoluteUrl } from '../api/links.js';
import { LeasedTaskPump } from '../jobs/task-pump.js';
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

/** Longer than an attempt can take (connection, greeting and socket timeouts of the mailer). */
const LEASE_MS = 60_000;

/**
 * Sends what the outbox and the periodic check recorded, at least once, like the webhook delivery
 * worker (jobs/task-pump.ts: woken by commits, polling every second, claims in batches under a
 * lease, so a node that dies mid-send leaves its tasks to be taken over). A mail server that is
 * down or answers 4xx is tried again with a growing delay; a few 5xx refusals end the task.
 * Without a mailer (no SMTP_URL) every task is recorded as skipped.
 */
export class NotificationWorker {
  private readonly pump: LeasedTaskPump<ClaimedNotification>;

  constructor(
    private readonly db: Db,
    private readonly settings: NotificationSettings,
    private readonly mailer: Mailer | undefined,
    private readonly unsubscribeKey: () => Buffer,
    private readonly log: NotificationLog,
  ) {
    this.pump = new LeasedTaskPump(
      {
        name: 'notifications',
        claim: (leaseId, limit) => claimDueNotifications(this.db, leaseId, LEASE_MS, limit),
        attempt: (task, leaseId) => this.attempt(task, leaseId),
      },
      settings.concurrency,
      log,
    );
  }

  start(): void {
    this.pump.start();
  }

  async stop(): Promise<void> {
    await this.pump.stop();
    this.mailer?.close();
  }

  wake(): void {
    this.pump.wake();
  }

  private async attempt(task: ClaimedNotification, leaseId: string): Promise<void> {
    try {
      const outcome = await this.decide(task);
      await recordOutcome(this.db, task, leaseId, outcome);
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
    if (task.alarm.status !== 'active') {
      if (task.reason === 'repeat' || task.reason === 'escalation')
        return { state: 'cancelled', reason: `the alarm was ${task.alarm.status}` };
      // Mailed at the end of quiet hours, it would wake someone to an alarm already handled.
      if (task.wasHeld) return { state: 'cancelled', reason: `the alarm was ${task.alarm.status} during quiet hours` };
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
          'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
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
