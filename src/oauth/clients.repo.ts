import { preparedStatement } from '../storage/prepared.js';
import type { Db } from '../storage/database.js';
import { announce } from '../storage/invalidations.js';
import type { GrantType, TokenFormat, UserAuthMode } from './grant-types.js';
import type { OAuthClient } from './oauth.schema.js';

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
          access_token_ttl, refresh_token_ttl, token_format, bound_user_id, user_auth, resource_server, created_by, created_at, updated_at
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
