import { type Page, type PageRequest, type Sort, type SortField, keysetPage, paginate } from '../storage/keyset.js';
import type { Db } from '../storage/database.js';
import type { ScalingKind, ScalingPoint, ScalingProfile } from './inventory.schema.js';
import { escapeLike, isUuid } from '../storage/sql.js';

/** Scaling profiles of an organization. Every query is scoped by organization_id. */

export const SCALING_PROFILE_SORTS: Record<string, SortField> = {
  name: { column: 'scaling_profiles.name', cast: 'text' },
  created_at: { column: 'scaling_profiles.created_at', cast: 'timestamptz' },
  updated_at: { column: 'scaling_profiles.updated_at', cast: 'timestamptz' },
};

export interface ScalingProfileFilter {
  kind?: ScalingKind | undefined;
  q?: string | undefined;
}

export async function listScalingProfiles(
  db: Db,
  organizationId: string,
  filter: ScalingProfileFilter,
  sort: Sort,
  page: PageRequest,
): Promise<Page<ScalingProfile>> {
  let query = db.selectFrom('scaling_profiles').selectAll().where('organization_id', '=', organizationId);
  if (filter.kind !== undefined) query = query.where('kind', '=', filter.kind);
  if (filter.q !== undefined) query = query.where('name', 'ilike', `%${escapeLike(filter.q)}%`);
  const rows = await paginate(query, sort, 'scaling_profiles.id', page).execute();
  return keysetPage(rows, sort, page);
}

export async function findScalingProfile(db: Db, organizationId: string, id: string): Promise<ScalingProfile | undefined> {
  if (!isUuid(id)) return undefined;
  return db
    .selectFrom('scaling_profiles')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .executeTakeFirst();
}

/** Scaling profiles by id (for `include`): one statement, ids that are not the organization's left out. */
export async function findScalingProfilesByIds(db: Db, organizationId: string, ids: readonly string[]): Promise<ScalingProfile[]> {
  const valid = ids.filter(isUuid);
  if (valid.length === 0) return [];
  return db.selectFrom('scaling_profiles').selectAll().where('organization_id', '=', organizationId).where('id', 'in', valid).execute();
}

/** A complete profile definition: the kind decides which of scale/offset or points apply. */
export interface ScalingProfileFields {
  name: string;
  description: string | null;
  kind: ScalingKind;
  scale: number | null;
  offset: number | null;
  points: ScalingPoint[] | null;
  unit: string | null;
}

function columns(fields: ScalingProfileFields) {
  const linear = fields.kind === 'linear';
  return {
    name: fields.name,
    description: fields.description,
    kind: fields.kind,
    scale: linear ? fields.scale : null,
    offset: linear ? fields.offset : null,
    points: linear ? null : JSON.stringify(fields.points ?? []),
    unit: fields.unit,
  };
}

export async function insertScalingProfile(db: Db, organizationId: string, fields: ScalingProfileFields): Promise<ScalingProfile> {
  return db
    .insertInto('scaling_profiles')
    .values({ organization_id: organizationId, ...columns(fields) })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Replaces the definition (the service merges a PATCH into the current one first). */
export async function replaceScalingProfile(
  db: Db,
  organizationId: string,
  id: string,
  fields: ScalingProfileFields,
): Promise<ScalingProfile | undefined> {
  if (!isUuid(id)) return undefined;
  return db
    .updateTable('scaling_profiles')
    .set({ ...columns(fields), updated_at: new Date() })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

/** Sensors using a deleted profile keep reporting raw values (the reference is cleared). */
export async function deleteScalingProfile(db: Db, organizationId: string, id: string): Promise<boolean> {
  if (!isUuid(id)) return false;
  const result = await db
    .deleteFrom('scaling_profiles')
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}
