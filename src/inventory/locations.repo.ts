import { type Page, type PageRequest, type Sort, type SortField, keysetPage, paginate } from '../storage/keyset.js';
import type { Db } from '../storage/database.js';
import type { Location } from './inventory.schema.js';
import { definedOnly, escapeLike, isUuid } from '../storage/sql.js';

/** Locations of an organization. Every query is scoped by organization_id. */

export const LOCATION_SORTS: Record<string, SortField> = {
  name: { column: 'locations.name', cast: 'text' },
  slug: { column: 'locations.slug', cast: 'text' },
  created_at: { column: 'locations.created_at', cast: 'timestamptz' },
  updated_at: { column: 'locations.updated_at', cast: 'timestamptz' },
};

export interface LocationFilter {
  slug?: string | undefined;
  /** Case-insensitive substring of name or slug. */
  q?: string | undefined;
}

export async function listLocations(
  db: Db,
  organizationId: string,
  filter: LocationFilter,
  sort: Sort,
  page: PageRequest,
): Promise<Page<Location>> {
  let query = db.selectFrom('locations').selectAll().where('organization_id', '=', organizationId);
  if (filter.slug !== undefined) query = query.where('slug', '=', filter.slug);
  if (filter.q !== undefined) {
    const pattern = `%${escapeLike(filter.q)}%`;
    query = query.where((eb) => eb.or([eb('name', 'ilike', pattern), eb('slug', 'ilike', pattern)]));
  }
  const rows = await paginate(query, sort, 'locations.id', page).execute();
  return keysetPage(rows, sort, page);
}

export async function findLocation(db: Db, organizationId: string, id: string): Promise<Location | undefined> {
  if (!isUuid(id)) return undefined;
  return db.selectFrom('locations').selectAll().where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
}

/** Locations by id (for `include`): one statement, ids that are not the organization's left out. */
export async function findLocationsByIds(db: Db, organizationId: string, ids: readonly string[]): Promise<Location[]> {
  const valid = ids.filter(isUuid);
  if (valid.length === 0) return [];
  return db.selectFrom('locations').selectAll().where('organization_id', '=', organizationId).where('id', 'in', valid).execute();
}

export async function findLocationBySlug(db: Db, organizationId: string, slug: string): Promise<Location | undefined> {
  return db.selectFrom('locations').selectAll().where('organization_id', '=', organizationId).where('slug', '=', slug).executeTakeFirst();
}

export interface LocationFields {
  slug: string;
  name: string;
  description?: string | null | undefined;
  timezone?: string | null | undefined;
}

export async function insertLocation(db: Db, organizationId: string, fields: LocationFields): Promise<Location> {
  return db
    .insertInto('locations')
    .values({
      organization_id: organizationId,
      slug: fields.slug,
      name: fields.name,
      description: fields.description ?? null,
      timezone: fields.timezone ?? null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function updateLocation(
  db: Db,
  organizationId: string,
  id: string,
  changes: Partial<LocationFields>,
): Promise<Location | undefined> {
  if (!isUuid(id)) return undefined;
  const set = definedOnly(changes);
  if (Object.keys(set).length === 0) return findLocation(db, organizationId, id);
  return db
    .updateTable('locations')
    .set({ ...set, updated_at: new Date() })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

/** Devices at a deleted location keep existing, without a location. */
export async function deleteLocation(db: Db, organizationId: string, id: string): Promise<boolean> {
  if (!isUuid(id)) return false;
  const result = await db.deleteFrom('locations').where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** Creates the location or updates its name (provisioning); a no-op when nothing changed. */
export async function upsertLocationBySlug(db: Db, organizationId: string, slug: string, name: string): Promise<Location> {
  const existing = await findLocationBySlug(db, organizationId, slug);
  if (!existing) return insertLocation(db, organizationId, { slug, name });
  if (existing.name === name) return existing;
  return (await updateLocation(db, organizationId, existing.id, { name })) ?? existing;
}
