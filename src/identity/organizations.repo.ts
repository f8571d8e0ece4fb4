import type { Db } from '../storage/database.js';
import type { Organization } from '../storage/schema.js';
import { sha256 } from '../security/tokens.js';

export async function findOrganizationById(db: Db, id: string): Promise<Organization | undefined> {
  return db.selectFrom('organizations').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findOrganizationBySlug(db: Db, slug: string): Promise<Organization | undefined> {
  return db.selectFrom('organizations').selectAll().where('slug', '=', slug).executeTakeFirst();
}

/** IoTConnect clients name their tenant by solution key; only its hash is stored. */
export async function findOrganizationBySolutionKey(db: Db, solutionKey: string): Promise<Organization | undefined> {
  return db.selectFrom('organizations').selectAll().where('solution_key_hash', '=', sha256(solutionKey)).executeTakeFirst();
}

export async function countOrganizations(db: Db): Promise<number> {
  const row = await db
    .selectFrom('organizations')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export interface OrganizationFields {
  slug: string;
  name: string;
  solutionKey?: string | null | undefined;
  /** Days readings are kept (null: the server's default); undefined leaves it as it is. */
  readingsRetentionDays?: number | null | undefined;
}

/** Creates the organization, or updates the one with that slug; a no-op when nothing changed. */
export async function upsertOrganization(db: Db, fields: OrganizationFields): Promise<Organization> {
  const changes = {
    name: fields.name,
    ...(fields.solutionKey !== undefined && { solution_key_hash: fields.solutionKey === null ? null : sha256(fields.solutionKey) }),
    ...(fields.readingsRetentionDays !== undefined && { readings_retention_days: fields.readingsRetentionDays }),
  };
  const existing = await findOrganizationBySlug(db, fields.slug);
  if (!existing)
    return db
      .insertInto('organizations')
      .values({ slug: fields.slug, ...changes })
      .returningAll()
      .executeTakeFirstOrThrow();
  if (Object.entries(changes).every(([key, value]) => existing[key as keyof Organization] === value)) return existing;
  return db
    .updateTable('organizations')
    .set({ ...changes, updated_at: new Date() })
    .where('id', '=', existing.id)
    .returningAll()
    .executeTakeFirstOrThrow();
}
