import { type SelectQueryBuilder, sql } from 'kysely';
import type { Db } from './database.js';

/**
 * The rows of several owners at once (a device's sensors, a webhook's deliveries: what JSON:API
 * `include` loads for a page of resources, api/compound.ts), in one statement, optionally bounded
 * per owner: with `limit`, only the first `limit` rows of each owner in `order`
 * (`row_number() over (partition by owner order by …)`), so one owner with a million rows costs
 * `limit` rows, not a million. Without `limit`, every row (GraphQL's batched loaders).
 */
export interface PerOwner {
  /** Column (qualified as the query names it) holding each row's owner id. */
  owner: string;
  /** Order of an owner's rows; the last column should be unique (an id) so the bound is stable. */
  order: readonly (readonly [column: string, direction: 'asc' | 'desc'])[];
  /** At most this many rows per owner; undefined: all of them. */
  limit?: number | undefined;
}

export async function rowsPerOwner<DB, TB extends keyof DB, O>(
  db: Db,
  query: SelectQueryBuilder<DB, TB, O>,
  { owner, order, limit }: PerOwner,
): Promise<O[]> {
  if (limit === undefined) {
    let ordered = query;
    for (const [column, direction] of order) ordered = ordered.orderBy(sql.ref(column), direction);
    return ordered.execute();
  }
  const orderBy = sql.join(order.map(([column, direction]) => sql`${sql.ref(column)} ${sql.raw(direction)}`));
  const ranked = query.select(sql<number>`row_number() over (partition by ${sql.ref(owner)} order by ${orderBy})`.as('owner_rank'));
  const { rows } = await sql<O & { owner_rank: number | string }>`
    select * from (${ranked}) as ranked where owner_rank <= ${Math.max(0, Math.floor(limit))} order by owner_rank`.execute(db);
  return rows.map(({ owner_rank: _rank, ...row }) => row as O);
}
