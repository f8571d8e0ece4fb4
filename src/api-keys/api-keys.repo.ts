import { preparedStatement } from '../storage/prepared.js';
import { type Expression, type SqlBool, sql } from 'kysely';
import type { Db } from '../storage/database.js';
import type { Role } from '../storage/schema.js';

/**
 * API keys (`sk_live_…`): 256 random bits, stored as SHA-256 with a short display prefix. Names
 * are unique among an organization's active keys.
 */

export interface ApiKeyRow {
  id: string;
  organizationId: string;
  name: string;
  prefix: string;
  scopes: string[];
  createdBy: string | null;
  createdByEmail: string | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

function baseQuery(db: Db) {
  return db
    .selectFrom('api_keys as k')
    .leftJoin('users as u', 'u.id', 'k.created_by')
    .select([
      'k.id',
      'k.organization_id',
      'k.name',
      'k.prefix',
      'k.scopes',
      'k.created_by',
      'u.email as created_by_email',
      'k.created_at',
      'k.last_used_at',
      'k.expires_at',
      'k.revoked_at',
    ]);
}

type BaseRow = Awaited<ReturnType<ReturnType<typeof baseQuery>['executeTakeFirstOrThrow']>>;

function toRow(row: BaseRow): ApiKeyRow {
  return {
    id: row.id,
    organizationId: row.organization_id,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes,
    createdBy: row.created_by,
    createdByEmail: row.created_by_email,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}

export interface NewApiKey {
  organizationId: string;
  name: string;
  keyHash: string;
  prefix: string;
  scopes: readonly string[];
  createdBy: string | null;
  expiresAt: Date | null;
}

export class ApiKeyNameTakenError extends Error {}

export async function insertApiKey(db: Db, key: NewApiKey): Promise<ApiKeyRow> {
  const inserted = await db
    .insertInto('api_keys')
    .values({
      organization_id: key.organizationId,
      name: key.name,
      key_hash: key.keyHash,
      prefix: key.prefix,
      scopes: [...key.scopes],
      created_by: key.createdBy,
      expires_at: key.expiresAt,
    })
    .onConflict((oc) => oc.columns(['organization_id', 'name']).where('revoked_at', 'is', null).doNothing())
    .returning('id')
    .executeTakeFirst();
  if (!inserted) throw new ApiKeyNameTakenError(`an active API key named "${key.name}" already exists`);
  return toRow(await baseQuery(db).where('k.id', '=', inserted.id).executeTakeFirstOrThrow());
}

export async function findApiKey(db: Db, organizationId: string, id: string): Promise<ApiKeyRow | undefined> {
  const row = await baseQuery(db).where('k.organization_id', '=', organizationId).where('k.id', '=', id).executeTakeFirst();
  return row && toRow(row);
}

export async function listApiKeys(
  db: Db,
  organizationId: string,
  options: { limit: number; after?: Expression<SqlBool> | undefined; includeRevoked: boolean },
): Promise<ApiKeyRow[]> {
  let query = baseQuery(db).where('k.organization_id', '=', organizationId);
  if (!options.includeRevoked) query = query.where('k.revoked_at', 'is', null);
  if (options.after) query = query.where(options.after);
  const rows = await query
    .orderBy('k.created_at', 'desc')
    .orderBy('k.id', 'desc')
    .limit(options.limit + 1)
    .execute();
  return rows.map(toRow);
}

/**
 * Revokes an active key of the organization: the key when this revoked it, `already` when it was
 * revoked before, undefined when the organization has no such key.
 */
export async function revokeApiKey(
  db: Db,
  organizationId: string,
  id: string,
): Promise<{ id: string; name: string } | 'already' | undefined> {
  const revoked = await db
    .updateTable('api_keys')
    .set({ revoked_at: sql<Date>`now()` })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .returning(['id', 'name'])
    .executeTakeFirst();
  if (revoked) return revoked;
  return (await findApiKey(db, organizationId, id)) ? 'already' : undefined;
}

/** Replaces the key of an active, unexpired key (same id, name and scopes); undefined when it is not one. */
export async function replaceApiKeySecret(
  db: Db,
  organizationId: string,
  id: string,
  secret: Pick<NewApiKey, 'keyHash' | 'prefix'>,
): Promise<ApiKeyRow | undefined> {
  const replaced = await db
    .updateTable('api_keys')
    .set({ key_hash: secret.keyHash, prefix: secret.prefix })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]))
    .returning('id')
    .executeTakeFirst();
  return replaced && findApiKey(db, organizationId, replaced.id);
}

/** What the bearer check needs of a usable key: its scopes and its creator's current role. */
export interface ActiveApiKey {
  id: string;
  organizationId: string;
  scopes: string[];
  createdBy: string | null;
  /** The creator's role now; null when the creator was deleted (the key keeps its own scopes). */
  creatorRole: Role | null;
  creatorActive: boolean;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
}

const FIND_ACTIVE_BY_HASH = preparedStatement(
  'find_active_api_key',
  `
  select k.id, k.organization_id, k.scopes, k.created_by, m.role, m.deactivated_at as membership_deactivated_at,
         u.deactivated_at, k.expires_at, k.last_used_at
  from api_keys k
  left join memberships m on m.organization_id = k.organization_id and m.user_id = k.created_by
  left join users u on u.id = k.created_by
  where k.key_hash = $1 and k.revoked_at is null and (k.expires_at is null or k.expires_at > now())`,
);

/** The bearer check's lookup, precompiled (it runs on every API-key request the cache misses). */
export async function findActiveApiKeyByHash(db: Db, keyHash: string): Promise<ActiveApiKey | undefined> {
  const { rows } = await db.executeQuery<{
    id: string;
    organization_id: string;
    scopes: string[];
    created_by: string | null;
    role: Role | null;
    membership_deactivated_at: Date | null;
    deactivated_at: Date | null;
    expires_at: Date | null;
    last_used_at: Date | null;
  }>(FIND_ACTIVE_BY_HASH.compile([keyHash]));
  const row = rows[0];
  if (!row) return undefined;
  return {
    id: row.id,
    organizationId: row.organization_id,
    scopes: row.scopes,
    createdBy: row.created_by,
    creatorRole: row.role,
    creatorActive: row.created_by === null || (row.role !== null && row.deactivated_at === null && row.membership_deactivated_at === null),
    expiresAt: row.expires_at,
    lastUsedAt: row.last_used_at,
  };
}

/** Records use, at most once a minute per key whatever the number of nodes. */
export async function touchApiKey(db: Db, id: string): Promise<void> {
  await db
    .updateTable('api_keys')
    .set({ last_used_at: sql<Date>`now()` })
    .where('id', '=', id)
    .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', sql<Date>`now() - interval '1 minute'`)]))
    .execute();
}

export interface ProvisionedApiKey {
  name: string;
  keyHash: string;
  prefix: string;
  scopes: string[];
  createdBy: string | null;
  expiresAt: Date | null;
}

export class ApiKeyConflictError extends Error {}

/**
 * Provisioning upsert: the key with that hash (renamed in the file) or else the active key with
 * that name is updated in place; nothing is written when nothing changed. Answers what changed.
 */
export async function upsertProvisionedApiKey(
  db: Db,
  organizationId: string,
  key: ProvisionedApiKey,
): Promise<{ id: string; change: 'created' | 'rotated' | 'updated' } | undefined> {
  const byHash = await db.selectFrom('api_keys').selectAll().where('key_hash', '=', key.keyHash).executeTakeFirst();
  if (byHash && byHash.organization_id !== organizationId)
    throw new ApiKeyConflictError(`API key "${key.name}" is already used by another organization`);
  // A key revoked through the API stays revoked: re-applying the file must not resurrect a leaked key.
  if (byHash?.revoked_at) return undefined;
  const existing =
    byHash ??
    (await db
      .selectFrom('api_keys')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('name', '=', key.name)
      .where('revoked_at', 'is', null)
      .executeTakeFirst());
  const values = {
    name: key.name,
    key_hash: key.keyHash,
    prefix: key.prefix,
    scopes: key.scopes,
    created_by: key.createdBy,
    expires_at: key.expiresAt,
  };
  if (!existing) {
    const inserted = await db
      .insertInto('api_keys')
      .values({ organization_id: organizationId, ...values })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { id: inserted.id, change: 'created' };
  }
  const same =
    existing.name === values.name &&
    existing.key_hash === values.key_hash &&
    existing.prefix === values.prefix &&
    existing.scopes.length === values.scopes.length &&
    existing.scopes.every((s, i) => s === values.scopes[i]) &&
    existing.created_by === values.created_by &&
    (existing.expires_at?.getTime() ?? null) === (values.expires_at?.getTime() ?? null);
  if (same) return undefined;
  await db.updateTable('api_keys').set(values).where('id', '=', existing.id).execute();
  return { id: existing.id, change: existing.key_hash === values.key_hash ? 'updated' : 'rotated' };
}
