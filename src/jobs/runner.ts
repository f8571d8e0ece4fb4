import { sql } from 'kysely';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Db } from '../storage/database.js';

/**
 * The one runner of periodic work (purges, partition upkeep, and later offline alarms and
 * calibration reminders). Each job runs every `intervalMs` on every node, but under a
 * PostgreSQL advisory lock named after it, taken with `pg_try_advisory_lock` on a connection held
 * for the run: while one node runs a job the others skip their turn instead of repeating the work
 * (the lock goes with the connection if the node dies). On the embedded database there is one
 * node and no lock. Started when the server is ready, stopped with it: timers are cleared and
 * runs in progress are told to stop and awaited, so the database never closes under a job.
 */

export interface Job {
  /** Names the job in logs and its lock. */
  name: string;
  intervalMs: number;
  /** Run once as soon as the server is ready, not only after the first interval. */
  runAtStart?: boolean;
  /** One run; long runs should check `stopping()` between steps and return early. */
  run(stopping: () => boolean): Promise<unknown>;
}

export interface JobLog {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
}

/** Runs on /metrics: a job whose last success grows old on every node is stuck or failing. */
interface JobMetrics {
  runs: Counter<'job' | 'result'>;
  lastSuccess: Gauge<'job'>;
}

function jobMetrics(registry: Registry): JobMetrics {
  const registers = [registry];
  return {
    runs: new Counter({
      name: 'job_runs_total',
      help: 'Turns of periodic jobs on this node, by job and result (ran; skipped: another node held it; failed)',
      labelNames: ['job', 'result'] as const,
      registers,
    }),
    lastSuccess: new Gauge({
      name: 'job_last_success_timestamp_seconds',
      help: 'When each periodic job last completed on this node (with several nodes, take the max over nodes)',
      labelNames: ['job'] as const,
      registers,
    }),
  };
}

export class JobRunner {
  private readonly jobs: Job[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly running = new Map<string, Promise<boolean>>();
  private readonly metrics: JobMetrics | undefined;
  private stopped = false;

  constructor(
    private readonly db: Db,
    private readonly exclusive: boolean,
    private readonly log: JobLog,
    registry?: Registry,
  ) {
    this.metrics = registry && jobMetrics(registry);
  }

  add(job: Job): void {
    if (this.jobs.some((j) => j.name === job.name)) throw new Error(`job "${job.name}" is added twice`);
    this.jobs.push(job);
  }

  start(): void {
    this.stopped = false;
    for (const job of this.jobs) {
      if (job.runAtStart) void this.runOnce(job.name);
      const timer = setInterval(() => void this.runOnce(job.name), job.intervalMs);
      timer.unref();
      this.timers.push(timer);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers.splice(0)) clearInterval(timer);
    await Promise.all(this.running.values());
  }

  /**
   * One run of `name` now, unless it is running on this node already or (with several nodes) on
   * another: resolves whether it ran. Failures are logged, never thrown: the next turn retries.
   */
  runOnce(name: string): Promise<boolean> {
    const job = this.jobs.find((j) => j.name === name);
    if (!job) throw new Error(`no job "${name}"`);
    let run = this.running.get(name);
    if (!run) {
      run = this.exclusively(job)
        .then((ran) => {
          this.metrics?.runs.inc({ job: name, result: ran ? 'ran' : 'skipped' });
          if (ran) this.metrics?.lastSuccess.set({ job: name }, Date.now() / 1000);
          return ran;
        })
        .catch((error: unknown) => {
          this.metrics?.runs.inc({ job: name, result: 'failed' });
          if (!this.stopped) this.log.warn({ job: name, err: error }, 'job failed; it runs again at its next turn');
          return false;
        })
        .finally(() => this.running.delete(name));
      this.running.set(name, run);
    }
    return run;
  }

  private async exclusively(job: Job): Promise<boolean> {
    const stopping = () => this.stopped;
    if (!this.exclusive) {
      await job.run(stopping);
      return true;
    }
    return this.db.connection().execute(async (connection) => {
      const key = `sensorcloud:job:${job.name}`;
      const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_lock(hashtext(${key})) as locked`.execute(connection);
      if (!rows[0]?.locked) return false;
      try {
        await job.run(stopping);
        return true;
      } finally {
        await sql`select pg_advisory_unlock(hashtext(${key}))`.execute(connection);
      }
    });
  }
}
