import { sql } from 'kysely';
import type { Db } from '../storage/database.js';

/**
 * Partition maintenance of `readings`: one partition per UTC month, named `readings_pYYYY_MM`,
 * created ahead of time so new readings never land in the DEFAULT partition in normal operation.
 *
 * Run on start and periodically (every node may run it: an advisory lock serializes the runs and
 * every step is idempotent). Readings whose month had no partition yet (far past, far future, or
 * written before the job first ran) sit in the default partition; the job moves the months of
 * the default partition that fall inside `splitWindow` into partitions of their own.
 */

export interface PartitionPolicy {
  /** Whole months before the current one that must have a partition (backfills land there). */
  monthsBehind: number;
  /** Months after the current one created ahead. */
  monthsAhead: number;
  /** Months of the default partition within [now - splitYearsBehind, now + splitYearsAhead) get their own partition. */
  splitYearsBehind: number;
  splitYearsAhead: number;
  /** At most this many partitions split out of the default partition per run (bounds lock time). */
  maxSplitsPerRun: number;
}

export const DEFAULT_PARTITION_POLICY: PartitionPolicy = {
  monthsBehind: 12,
  monthsAhead: 3,
  splitYearsBehind: 10,
  splitYearsAhead: 2,
  maxSplitsPerRun: 24,
};

export interface MaintenanceResult {
  /** Partitions created empty. */
  created: string[];
  /** Partitions created from rows moved out of the default partition. */
  split: { name: string; rows: number }[];
}

/** First instant of the UTC month of `date` shifted by `offset` months. */
export function monthStart(date: Date, offset = 0): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + offset, 1));
}

/** Whether the month starting at `month` lies wholly before the horizon (no organization keeps it). */
export function isBeyondHorizon(month: Date, horizon: Date | undefined): boolean {
  return horizon !== undefined && monthStart(month, 1).getTime() <= horizon.getTime();
}

export function partitionName(month: Date): string {
  return `readings_p${String(month.getUTCFullYear()).padStart(4, '0')}_${String(month.getUTCMonth() + 1).padStart(2, '0')}`;
}

const LOCK_KEY = 0x5c_7ead; // any constant; shared by every node of the installation

async function existingPartitions(db: Db): Promise<Set<string>> {
  const { rows } = await sql<{ name: string }>`
    select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'readings'::regclass`.execute(db);
  return new Set(rows.map((r) => r.name));
}

function bounds(month: Date): { from: string; to: string } {
  return { from: month.toISOString(), to: monthStart(month, 1).toISOString() };
}

/**
 * Creates the partition of one month. The table is created standalone and attached under a
 * SHARE lock on `readings`: queries carry on meanwhile, writers wait the few milliseconds the
 * attach takes and then route their rows with the new partition in view (a row routed to the
 * default partition before the attach committed would fail that partition's new constraint).
 *
 * When the default partition already holds rows of that month, they move into the new partition
 * first, and then `readings` itself is locked ACCESS EXCLUSIVE for the move: a query planned
 * against the old set of partitions and executed after the commit would otherwise find the rows
 * neither in the default partition (deleted) nor in the new one (unknown to its plan). That only
 * happens for months outside the window kept ready (far past or future), whose rows are few.
 * Either lock is waited for one second at most (otherwise the next run tries again), so a long
 * transaction cannot make every request queue behind the job. Returns the rows moved.
 */
async function createMonth(db: Db, month: Date): Promise<number> {
  const name = partitionName(month);
  const { from, to } = bounds(month);
  const inRange = sql`ts >= ${from}::timestamptz and ts < ${to}::timestamptz`;
  return db.transaction().execute(async (trx) => {
    await sql`set local lock_timeout = '10s'`.execute(trx);
    await sql`select pg_advisory_xact_lock(${LOCK_KEY})`.execute(trx);
    const exists = await sql<{ found: string | null }>`select to_regclass(${name})::text as found`.execute(trx);
    if (exists.rows[0]?.found) return 0;
    const pending = await sql<{ present: boolean }>`select exists (select 1 from readings_default where ${inRange}) as present`.execute(
      trx,
    );
    const move = pending.rows[0]?.present === true;
    await sql`set local lock_timeout = '1s'`.execute(trx);
    if (move) {
      await sql`lock table readings in access exclusive mode`.execute(trx);
    } else {
      // Writers wait here, before routing their rows: an insert routed to the default partition
      // while the month is attached fails its partition check once the attach commits.
      await sql`lock table readings in share mode`.execute(trx);
    }
    await sql`create table ${sql.table(name)} (like readings including defaults including constraints)`.execute(trx);
    let moved = 0;
    if (move) {
      const result = await sql`
        with gone as (delete from readings_default where ${inRange} returning *)
        insert into ${sql.table(name)} select * from gone`.execute(trx);
      moved = Number(result.numAffectedRows ?? 0);
    }
    // (Rows that reached the default partition since the check make the attach fail: the
    // transaction rolls back and the next run moves them.)
    await sql`alter table readings attach partition ${sql.table(name)} for values from (${sql.lit(from)}) to (${sql.lit(to)})`.execute(trx);
    return moved;
  });
}

/**
 * Makes sure the partitions of the policy's window exist and splits the default partition.
 * `shouldStop` is asked between months (a closing server stops after the month in progress).
 */
export async function maintainReadingPartitions(
  db: Db,
  now: Date = new Date(),
  policy: PartitionPolicy = DEFAULT_PARTITION_POLICY,
  shouldStop: () => boolean = () => false,
  /** The readings horizon (readings/retention.ts): months wholly before it are not created. */
  horizon?: Date,
): Promise<MaintenanceResult> {
  const result: MaintenanceResult = { created: [], split: [] };
  let existing = await existingPartitions(db);
  // The current month and those ahead first: they are the ones new readings need.
  const offsets: number[] = [];
  for (let i = 0; i <= policy.monthsAhead; i += 1) offsets.push(i);
  for (let i = 1; i <= policy.monthsBehind; i += 1) offsets.push(-i);
  for (const offset of offsets) {
    if (shouldStop()) return result;
    const month = monthStart(now, offset);
    const name = partitionName(month);
    if (existing.has(name) || isBeyondHorizon(month, horizon)) continue;
    const moved = await createMonth(db, month);
    if (moved > 0) result.split.push({ name, rows: moved });
    else result.created.push(name);
  }

  // Months still in the default partition (readings older or newer than the window).
  const anything = await sql<{ present: boolean }>`select exists (select 1 from readings_default) as present`.execute(db);
  if (anything.rows[0]?.present) {
    existing = await existingPartitions(db);
    const window = monthStart(new Date(Date.UTC(now.getUTCFullYear() - policy.splitYearsBehind, now.getUTCMonth(), 1)));
    // Rows of months no one keeps are left to the retention job, not moved.
    const lo = horizon && monthStart(horizon) > window ? monthStart(horizon) : window;
    const hi = monthStart(new Date(Date.UTC(now.getUTCFullYear() + policy.splitYearsAhead, now.getUTCMonth(), 1)));
    const { rows } = await sql<{ month: Date }>`
      select distinct date_trunc('month', ts, 'UTC') as month from readings_default
      where ts >= ${lo.toISOString()}::timestamptz and ts < ${hi.toISOString()}::timestamptz
      order by 1 limit ${policy.maxSplitsPerRun}`.execute(db);
    for (const row of rows) {
      if (shouldStop()) return result;
      const month = monthStart(new Date(row.month));
      const name = partitionName(month);
      if (existing.has(name)) continue;
      const moved = await createMonth(db, month);
      result.split.push({ name, rows: moved });
    }
  }
  return result;
}

export interface PartitionInfo {
  name: string;
  /** The partition bound as PostgreSQL prints it (`FOR VALUES FROM (…) TO (…)` or `DEFAULT`). */
  bound: string;
}

export async function listReadingPartitions(db: Db): Promise<PartitionInfo[]> {
  const { rows } = await sql<PartitionInfo>`
    select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bound
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'readings'::regclass order by c.relname`.execute(db);
  return rows;
}
