import { randomUUID } from 'node:crypto';

/** Where a pump's tasks come from and what it does with each (webhook deliveries, emails). */
export interface LeasedTasks<Task> {
  /** Names the work in logs. */
  name: string;
  /** Takes up to `limit` due tasks for the lease `leaseId` (SKIP LOCKED and a lease, in one statement). */
  claim(leaseId: string, limit: number): Promise<Task[]>;
  /** One attempt, recording its own outcome; a failure to record leaves the task to its lease's end. */
  attempt(task: Task, leaseId: string): Promise<void>;
}

export interface PumpLog {
  warn(details: object, message: string): void;
}

/** Due tasks (retries, expired leases) are looked for at least this often without a wake-up. */
const POLL_MS = 1_000;

/**
 * Keeps up to `concurrency` attempts of leased tasks in flight on this node: woken when a commit
 * announces new work (`wake`), and polling every second for retries coming due and leases run
 * out. Tasks are claimed in batches, and again only once half the attempts in flight are done, so
 * a busy pump makes one claim per batch rather than one per attempt; after a claim that found
 * less than it could take, only a wake-up or the poll claims again.
 */
export class LeasedTaskPump<Task> {
  readonly leaseId = randomUUID();
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private pumping: Promise<void> | undefined;
  private wanted = false;
  private drained = false;
  private stopped = true;

  constructor(
    private readonly tasks: LeasedTasks<Task>,
    private readonly concurrency: number,
    private readonly log: PumpLog,
  ) {}

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.wake(), POLL_MS);
    this.timer.unref();
    this.wake();
  }

  /** Stops claiming and lets the attempts in flight finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.pumping;
    await Promise.allSettled([...this.inFlight]);
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
        const room = this.concurrency - this.inFlight.size;
        if (room <= 0) return;
        const claimed = await this.tasks.claim(this.leaseId, room);
        for (const task of claimed) this.track(this.tasks.attempt(task, this.leaseId));
        if (claimed.length < room) {
          this.drained = true;
          return;
        }
      }
    } catch (error) {
      this.log.warn({ err: error }, `${this.tasks.name}: could not claim tasks; retrying at the next turn`);
    }
  }

  private track(attempt: Promise<void>): void {
    this.inFlight.add(attempt);
    void attempt
      .catch((error: unknown) =>
        this.log.warn({ err: error }, `${this.tasks.name}: an attempt failed unexpectedly; its lease will run out`),
      )
      .finally(() => {
        this.inFlight.delete(attempt);
        if (!this.drained && this.inFlight.size <= this.concurrency / 2) this.pump();
      });
  }
}
