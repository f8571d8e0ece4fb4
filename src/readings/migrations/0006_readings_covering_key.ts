import { type Kysely, sql } from 'kysely';

/**
 * The primary key of `readings` carries the values: (sensor_id, ts) INCLUDE (value, raw_value).
 * A range of one sensor's readings — the API's most common read — then is an index-only scan:
 * rows of one sensor sit together in the index but are spread across the heap among every other
 * sensor's (ingest writes in time order), so the heap visits cost more than the scan itself
 * (about 225 heap pages per 1,000 readings on the benchmark table). Tenancy moves to a check
 * through `sensors` in each query (readings.repo.ts), so no other column is needed. The key stays
 * the ingest's ON CONFLICT arbiter; the index grows by the two doubles per row.
 *
 * Monthly partitions created later inherit the key (partitions.ts attaches tables built LIKE
 * readings, and attaching builds the parent's index on them).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table readings drop constraint readings_pkey`.execute(db);
  await sql`alter table readings add constraint readings_pkey primary key (sensor_id, ts) include (value, raw_value)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table readings drop constraint readings_pkey`.execute(db);
  await sql`alter table readings add constraint readings_pkey primary key (sensor_id, ts)`.execute(db);
}
