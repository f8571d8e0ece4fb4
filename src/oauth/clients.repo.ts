import { preparedStatement } from '../storage/prepared.js';
import type { Db } from '../storage/database.js';
import { announce } from '../storage/invalidations.js';
import { type Page, type PageRequest, type Sort, type SortField, keysetPage, paginate } from '../storage/keyset.js';
import { escapeLike, isUuid } from '../storage/sql.js';
import type { GrantType, TokenFormat, UserAuthMode } from './grant-types.js';
import type { ClientManager, OAuthClient } from './oauth.schema.js';

/**
 * OAuth clients (applications). `client_id` is public and globally unique; `id` (the primary key,
 * "client pk") is what every other table references. Secrets are argon2id PHC strings, written
 * only through `saveClient` (provisioning, CLI, applications API) and checked only by
 * client-auth.ts.
 */

export const DEFAULT_ACCESS_TOKEN_TTL = 3600;

const FIND_BY_CLIENT_ID = preparedStatement(
  'find_client_by_client_id',
  `select id, organization_id, client_id, name, secret_hash, public, grant_types, scopes, redirect_uris, privacy_policy_url,
          access_token_ttl, refresh_token_ttl, token_format, bound_user_id, user_auth, resource_server, enabled, managed_by,
          created_by, created_at, updated_at
   from oauth_clients where client_id = $1`,
);

/** Read on every client authentication: a precompiled statement, no query building per request. */
export async function findClientByClientId(db: Db, clientId: string): Promise<OAuthClient | undefined> {
  const { rows } = await db.executeQuery<OAuthClient>(FIND_BY_CLIENT_ID.compile([clientId]));
  return rows[0];
}

/**
 * Client rows as read by client authentication, cached per node for at most CLIENT_CACHE_TTL_MS
 * (like the bearer cache). Any client write through `saveClient` drops every cached row on this
 * node at once and, when it commits, on every other node (storage/invalidations.ts). Unknown client_ids are not
 * cached. Keyed per database handle, so separate databases in one process never share rows.
 */
export const CLIENT_CACHE_TTL_MS = 1000;
const CLIENT_CACHE_MAX_ENTRIES = 10_000;
let clientGeneration = 0;
const clientCaches = new WeakMap<Db, Map<string, { client: OAuthClient; until: number; generation: number }>>();

/** Forgets every cached client row on this node (a client was created or changed). */
export function forgetCachedClients(): void {
  clientGeneration++;
}

export async function findClientByClientIdCached(db: Db, clientId: string, now: number = Date.now()): Promise<OAuthClient | undefined> {
  let cache = clientCaches.get(db);
  if (!cache) {
    cache = new Map();
    clientCaches.set(db, cache);
  }
  const entry = cache.get(clientId);
  if (entry && entry.until > now && entry.generation === clientGeneration) return entry.client;
  if (entry) cache.delete(clientId);
  const generation = clientGeneration;
  const client = await findClientByClientId(db, clientId);
  if (client && generation === clientGeneration) {
    if (cache.size >= CLIENT_CACHE_MAX_ENTRIES) cache.delete(cache.keys().next().value as string);
    cache.set(clientId, { client, until: now + CLIENT_CACHE_TTL_MS, generation });
  }
  return client;
}

export interface ClientFields {
  clientId: string;
  name: string;
  /** argon2id hash; `undefined` keeps the stored one, `null` clears it (public clients). */
  secretHash?: string | null | undefined;
  public: boolean;
  grantTypes: GrantType[];
  scopes: string[];
  redirectUris: string[];
  privacyPolicyUrl: string | null;
  accessTokenTtl: number;
  refreshTokenTtl: number | null;
  tokenFormat: TokenFormat;
  boundUserId: string | null;
  userAuth: UserAuthMode;
  resourceServer: boolean;
  /** Who owns the registration besides the organization's admins; null: they do. `undefined` keeps the stored value (null for a new client). */
  managedBy?: ClientManager | null | undefined;
  /** `undefined` keeps the stored value (true for a new client). */
  enabled?: boolean | undefined;
  createdBy?: string | null | undefined;
}

export class ClientConflictError extends Error {}

const sameArray = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Creates the client, or updates the one with that client_id in the same organization; a no-op
 * (no write, `updated_at` untouched) when nothing changed. A client_id taken by another
 * organization is a conflict.
 */
export async function saveClient(db: Db, organizationId: string, fields: ClientFields): Promise<{ client: OAuthClient; changed: boolean }> {
  const values = {
    name: fields.name,
    public: fields.public,
    grant_types: fields.grantTypes,
    scopes: fields.scopes,
    redirect_uris: fields.redirectUris,
    privacy_policy_url: fields.privacyPolicyUrl,
    access_token_ttl: fields.accessTokenTtl,
    refresh_token_ttl: fields.refreshTokenTtl,
    token_format: fields.tokenFormat,
    bound_user_id: fields.boundUserId,
    user_auth: fields.userAuth,
    resource_server: fields.resourceServer,
    ...(fields.managedBy !== undefined && { managed_by: fields.managedBy }),
    ...(fields.enabled !== undefined && { enabled: fields.enabled }),
    ...(fields.secretHash !== undefined && { secret_hash: fields.secretHash }),
  };
  const existing = await findClientByClientId(db, fields.clientId);
  if (!existing) {
    forgetCachedClients();
    await announce(db, { kind: 'clients' });
    const client = await db
      .insertInto('oauth_clients')
      .values({
        organization_id: organizationId,
        client_id: fields.clientId,
        created_by: fields.createdBy ?? null,
        ...values,
        secret_hash: fields.secretHash ?? null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return { client, changed: true };
  }
  if (existing.organization_id !== organizationId)
    throw new ClientConflictError(`client_id "${fields.clientId}" belongs to another organization`);
  const unchanged = Object.entries(values).every(([key, value]) => {
    const current = existing[key as keyof OAuthClient];
    return Array.isArray(value) ? Array.isArray(current) && sameArray(current, value) : current === value;
  });
  if (unchanged) return { client: existing, changed: false };
  const client = await db
    .updateTable('oauth_clients')
    .set({ ...values, updated_at: new Date() })
    .where('id', '=', existing.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  forgetCachedClients();
  // Every node's cached rows go when this commits (the CLI and provisioning change clients too).
  await announce(db, { kind: 'clients' });
  return { client, changed: true };
}

/** The fields of a stored client, as `saveClient` takes them (to change some and save the rest as they are). */
export function clientFieldsOf(client: OAuthClient): ClientFields {
  return {
    clientId: client.client_id,
    name: client.name,
    public: client.public,
    grantTypes: client.grant_types,
    scopes: client.scopes,
    redirectUris: client.redirect_uris,
    privacyPolicyUrl: client.privacy_policy_url,
    accessTokenTtl: client.access_token_ttl,
    refreshTokenTtl: client.refresh_token_ttl,
    tokenFormat: client.token_format,
    boundUserId: client.bound_user_id,
    userAuth: client.user_auth,
    resourceServer: client.resource_server,
    managedBy: client.managed_by,
  };
}

/** A client as `/v1/applications` shows it: the row and its creator's email. */
export type ClientView = OAuthClient & { created_by_email: string | null };

export const CLIENT_SORTS: Record<string, SortField> = {
  created_at: { column: 'c.created_at', cast: 'timestamptz' },
  name: { column: 'c.name', cast: 'text' },
};

export interface ClientFilter {
  public?: boolean | undefined;
  enabled?: boolean | undefined;
  /** Case-insensitive substring of the name or client_id. */
  q?: string | undefined;
}

function clientViews(db: Db, organizationId: string) {
  return db
    .selectFrom('oauth_clients as c')
    .leftJoin('users as u', 'u.id', 'c.created_by')
    .selectAll('c')
    .select('u.email as created_by_email')
    .where('c.organization_id', '=', organizationId);
}

export async function listClients(
  db: Db,
  organizationId: string,
  filter: ClientFilter,
  sort: Sort,
  page: PageRequest,
): Promise<Page<ClientView>> {
  let query = clientViews(db, organizationId);
  if (filter.public !== undefined) query = query.where('c.public', '=', filter.public);
  if (filter.enabled !== undefined) query = query.where('c.enabled', '=', filter.enabled);
  if (filter.q !== undefined) {
    const pattern = `%${escapeLike(filter.q)}%`;
    query = query.where((eb) => eb.or([eb('c.name', 'ilike', pattern), eb('c.client_id', 'ilike', pattern)]));
  }
  return keysetPage(await paginate(query, sort, 'c.id', page).execute(), sort, page);
}

/** One client of the organization by its id (not its client_id); `lock` takes the row FOR UPDATE. */
export async function findClient(
  db: Db,
  organizationId: string,
  id: string,
  options: { lock?: boolean } = {},
): Promise<ClientView | undefined> {
  if (!isUuid(id)) return undefined;
  const query = clientViews(db, organizationId).where('c.id', '=', id);
  return (options.lock ? query.forUpdate('c') : query).executeTakeFirst();
}

/**
 * Deletes a client of the organization with everything issued to it: its grants with their access
 * and refresh tokens, its authorization and device codes and the consents given to it all go with
 * it (ON DELETE CASCADE). Cached client rows are dropped here and, on commit, on every node; the
 * caller drops cached bearer principals (`bearer.revoked({ clientPk })`).
 */
export async function deleteClient(db: Db, organizationId: string, id: string): Promise<boolean> {
  if (!isUuid(id)) return false;
  const result = await db.deleteFrom('oauth_clients').where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
  if (result.numDeletedRows === 0n) return false;
  forgetCachedClients();
  await announce(db, { kind: 'clients' });
  return true;
}
