import { sql } from 'kysely';
import type { Db } from './database.js';

/**
 * Deletes the rows of `table` whose `column` is before `before`, `batch` rows per statement, until
 * none is left or `stopping()`: a retention purge of millions of rows never holds one huge
 * transaction or lock. `column` needs an index of its own. Answers the number deleted.
 */
export async function deleteOlderThan(
  db: Db,
  target: { table: string; column: string; batch: number },
  before: Date,
  stopping: () => boolean = () => false,
): Promise<number> {
  const table = sql.table(target.table);
  const column = sql.ref(target.column);
  let purged = 0;
  while (!stopping()) {
    const { rows } = await sql<{ n: number }>`
      with gone as (
        delete from ${table} where id in (select id from ${table} where ${column} < ${before} limit ${target.batch}) returning 1)
      select count(*)::int as n from gone`.execute(db);
    const n = Number(rows[0]?.n ?? 0);
    purged += n;
    if (n < target.batch) break;
  }
  return purged;
}
