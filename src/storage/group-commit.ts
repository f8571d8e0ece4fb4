import { isDatabaseUnavailable } from './availability.js';

/**
 * Group commit: writes submitted while earlier ones are being committed are combined into the
 * next statement, so N concurrent writers cost one round trip and one commit (one WAL flush)
 * instead of N. A writer's promise settles only once the statement holding its write has
 * committed: nothing is acknowledged before it is durable. Without concurrency a write is flushed
 * at the end of the event loop's turn, alone, so the group adds no measurable latency; batches
 * grow exactly as fast as commits queue up.
 */
export interface GroupCommitOptions {
  /** Largest number of writes in one statement (bounds its parameters and its duration). */
  maxBatch: number;
  /** Statements in flight at once; the rest wait and grow the next batch. */
  maxInFlight: number;
}

interface Pending<T> {
  item: T;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class GroupCommit<T> {
  private queue: Pending<T>[] = [];
  private inFlight = 0;
  private drainScheduled = false;

  constructor(
    /** Writes every item in one statement, atomically: all of them or none. */
    private readonly writeMany: (items: readonly T[]) => Promise<void>,
    private readonly options: GroupCommitOptions,
  ) {}

  submit(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.scheduleDrain();
    });
  }

  /**
   * Drains once the current turn of the event loop has handled every I/O callback ready in it:
   * the writes those callbacks submit share one statement. Without this, on the embedded database
   * (which runs each query synchronously, inside microtasks) every write was flushed and committed
   * before the next callback ran: batches of one, 2.6 ms each, and webhook delivery held at ~300/s.
   */
  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  private drain(): void {
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.inFlight++;
      void this.flush(batch).finally(() => {
        this.inFlight--;
        this.drain();
      });
    }
  }

  private async flush(batch: Pending<T>[]): Promise<void> {
    try {
      await this.writeMany(batch.map((pending) => pending.item));
      for (const pending of batch) pending.resolve();
    } catch (error) {
      // Without a database every write fails alike: retrying each alone would only queue more.
      if (batch.length === 1 || isDatabaseUnavailable(error)) {
        for (const pending of batch) pending.reject(error);
        return;
      }
      // The failed statement wrote nothing; one bad write must not fail the writes it happened to
      // share that statement with, so each is retried alone and only the bad one fails.
      await Promise.all(
        batch.map(async (pending) => {
          try {
            await this.writeMany([pending.item]);
            pending.resolve();
          } catch (singleError) {
            pending.reject(singleError);
          }
        }),
      );
    }
  }
}
