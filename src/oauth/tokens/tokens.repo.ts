import { preparedStatement } from '../../storage/prepared.js';
import { sql } from 'kysely';
import type { Db } from '../../storage/database.js';
import type { Role } from '../../storage/schema.js';
import type { GrantType } from '../grant-types.js';

/**
 * The token store: grants (token families) and their access and refresh tokens, by SHA-256 only.
 * A token is active when it, its grant, its client (enabled) and (for user-bound tokens) the user's
 * membership are all live; every check goes through `findActiveAccessToken` / `findRefreshToken`.
 */

export interface NewGrant {
  organizationId: string;
  clientPk: string;
  userId: string | null;
  grantType: GrantType;
  scopes: readonly string[];
  scopeDisplay: string;
}

export async function insertGrant(db: Db, grant: NewGrant): Promise<string> {
  const row = await db
    .insertInto('oauth_grants')
    .values({
      organization_id: grant.organizationId,
      client_pk: grant.clientPk,
      user_id: grant.userId,
      grant_type: grant.grantType,
      scopes: [...grant.scopes],
      scope_display: grant.scopeDisplay,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

export interface NewAccessToken {
  tokenHash: string;
  grantId: string;
  organizationId: string;
  clientPk: string;
  userId: string | null;
  scopes: readonly string[];
  scopeDisplay: string;
  createdAt: Date;
  expiresAt: Date;
}

export async function insertAccessToken(db: Db, token: NewAccessToken): Promise<void> {
  await db
    .insertInto('oauth_access_tokens')
    .values({
      token_hash: token.tokenHash,
      grant_id: token.grantId,
      organization_id: token.organizationId,
      client_pk: token.clientPk,
      user_id: token.userId,
      scopes: [...token.scopes],
      scope_display: token.scopeDisplay,
      created_at: token.createdAt,
      expires_at: token.expiresAt,
    })
    .execute();
}

export async function insertRefreshToken(
  db: Db,
  token: { tokenHash: string; grantId: string; organizationId: string; createdAt: Date; expiresAt: Date | null },
): Promise<void> {
  await db
    .insertInto('oauth_refresh_tokens')
    .values({
      token_hash: token.tokenHash,
      grant_id: token.grantId,
      organization_id: token.organizationId,
      created_at: token.createdAt,
      expires_at: token.expiresAt,
    })
    .execute();
}

/** An active access token with everything the bearer check, introspection and token info need. */
export interface AccessTokenView {
  tokenHash: string;
  grantId: string;
  grantType: GrantType;
  organizationId: string;
  clientPk: string;
  clientId: string;
  userId: string | null;
  userEmail: string | null;
  /** The user's current role in the token's organization (null for tokens without a user). */
  role: Role | null;
  scopes: string[];
  scopeDisplay: string;
  createdAt: Date;
  expiresAt: Date;
}

/**
 * The hot path of every bearer check and introspection, as one precompiled statement (building it
 * with the query builder on each request cost more CPU than running it).
 */
const FIND_ACTIVE_ACCESS_TOKEN = preparedStatement(
  'find_active_access_token',
  `
  select t.token_hash, t.grant_id, g.grant_type, t.organization_id, t.client_pk, c.client_id, t.user_id,
         u.email, u.deactivated_at, m.role, m.deactivated_at as membership_deactivated_at,
         t.scopes, t.scope_display, t.created_at, t.expires_at
  from oauth_access_tokens t
  join oauth_grants g on g.id = t.grant_id
  join oauth_clients c on c.id = t.client_pk
  left join memberships m on m.organization_id = t.organization_id and m.user_id = t.user_id
  left join users u on u.id = t.user_id
  where t.token_hash = $1 and t.revoked_at is null and g.revoked_at is null and t.expires_at > now() and c.enabled`,
);

interface ActiveAccessTokenRow {
  token_hash: string;
  grant_id: string;
  grant_type: GrantType;
  organization_id: string;
  client_pk: string;
  client_id: string;
  user_id: string | null;
  email: string | null;
  deactivated_at: Date | null;
  role: Role | null;
  membership_deactivated_at: Date | null;
  scopes: string[];
  scope_display: string;
  created_at: Date;
  expires_at: Date;
}

export async function findActiveAccessToken(db: Db, tokenHash: string): Promise<AccessTokenView | undefined> {
  const { rows } = await db.executeQuery<ActiveAccessTokenRow>(FIND_ACTIVE_ACCESS_TOKEN.compile([tokenHash]));
  const row = rows[0];
  if (!row) return undefined;
  // A token acting for a user lives only as long as that user's membership.
  if (row.user_id !== null && (row.role === null || row.deactivated_at !== null || row.membership_deactivated_at !== null))
    return undefined;
  return {
    tokenHash: row.token_hash,
    grantId: row.grant_id,
    grantType: row.grant_type,
    organizationId: row.organization_id,
    clientPk: row.client_pk,
    clientId: row.client_id,
    userId: row.user_id,
    userEmail: row.email,
    role: row.role,
    scopes: row.scopes,
    scopeDisplay: row.scope_display,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}

/** A new grant with its first access token and, when the grant allows one, its refresh token. */
export interface NewIssuance {
  /** Chosen by the caller, so a batch needs no RETURNING to tell its grants apart. */
  grantId: string;
  grant: NewGrant;
  access: Omit<NewAccessToken, 'grantId' | 'organizationId' | 'clientPk' | 'userId'>;
  refresh?: { tokenHash: string; expiresAt: Date | null };
}

/**
 * Column arrays zipped by `unnest`, one element per issuance. Scope lists travel space-joined:
 * `unnest` would flatten an array of arrays, and a scope token never contains a space
 * (RFC 6749 §3.3).
 */
const ISSUE_NEW_GRANTS = preparedStatement(
  'issue_new_grants',
  `
  with g as (
    insert into oauth_grants (id, organization_id, client_pk, user_id, grant_type, scopes, scope_display)
    select id, organization_id, client_pk, user_id, grant_type, string_to_array(scopes, ' '), scope_display
    from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[])
      as x(id, organization_id, client_pk, user_id, grant_type, scopes, scope_display)
  ), a as (
    insert into oauth_access_tokens (token_hash, grant_id, organization_id, client_pk, user_id, scopes, scope_display, created_at, expires_at)
    select token_hash, grant_id, organization_id, client_pk, user_id, string_to_array(scopes, ' '), scope_display, created_at, expires_at
    from unnest($8::text[], $1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[])
      as x(token_hash, grant_id, organization_id, client_pk, user_id, scopes, scope_display, created_at, expires_at)
  )
  insert into oauth_refresh_tokens (token_hash, grant_id, organization_id, created_at, expires_at)
  select token_hash, grant_id, organization_id, created_at, expires_at
  from unnest($13::text[], $1::uuid[], $2::uuid[], $11::timestamptz[], $14::timestamptz[])
    as x(token_hash, grant_id, organization_id, created_at, expires_at)
  where token_hash is not null`,
);

/**
 * New grants with their tokens in one statement: one round trip and one commit for the whole
 * batch (the group commit of concurrent issuances, `TokenService`), all rows or none.
 */
export async function insertGrantsWithTokens(db: Db, issuances: readonly NewIssuance[]): Promise<void> {
  const column = <V>(pick: (issuance: NewIssuance) => V): V[] => issuances.map(pick);
  await db.executeQuery(
    ISSUE_NEW_GRANTS.compile([
      column((i) => i.grantId),
      column((i) => i.grant.organizationId),
      column((i) => i.grant.clientPk),
      column((i) => i.grant.userId),
      column((i) => i.grant.grantType),
      column((i) => i.grant.scopes.join(' ')),
      column((i) => i.grant.scopeDisplay),
      column((i) => i.access.tokenHash),
      column((i) => i.access.scopes.join(' ')),
      column((i) => i.access.scopeDisplay),
      column((i) => i.access.createdAt),
      column((i) => i.access.expiresAt),
      column((i) => i.refresh?.tokenHash ?? null),
      column((i) => i.refresh?.expiresAt ?? null),
    ]),
  );
}

/** Any access token row (active or not): revocation needs to know whose it is. */
export async function findAccessTokenOwner(
  db: Db,
  tokenHash: string,
): Promise<{ grantId: string; clientPk: string; organizationId: string } | undefined> {
  const row = await db
    .selectFrom('oauth_access_tokens')
    .select(['grant_id', 'client_pk', 'organization_id'])
    .where('token_hash', '=', tokenHash)
    .executeTakeFirst();
  return row && { grantId: row.grant_id, clientPk: row.client_pk, organizationId: row.organization_id };
}

export interface RefreshTokenView {
  tokenHash: string;
  grantId: string;
  organizationId: string;
  clientPk: string;
  clientId: string;
  userId: string | null;
  grantType: GrantType;
  grantScopes: string[];
  grantScopeDisplay: string;
  createdAt: Date;
  expiresAt: Date | null;
  usedAt: Date | null;
  /** Seconds between the spending and this statement's transaction start (database clock), when spent. */
  usedSecondsAgo: number | null;
  revokedAt: Date | null;
  grantRevokedAt: Date | null;
  expired: boolean;
}

/**
 * `lockFamily` takes the grant row FOR UPDATE: a refresh runs one at a time per family, and every
 * writer of a family (refresh, revocation) locks the grant before its tokens, so concurrent
 * refreshes and the revocations their losers trigger queue instead of deadlocking.
 */
export async function findRefreshToken(
  db: Db,
  tokenHash: string,
  options: { lockFamily?: boolean } = {},
): Promise<RefreshTokenView | undefined> {
  let query = db
    .selectFrom('oauth_refresh_tokens as r')
    .innerJoin('oauth_grants as g', 'g.id', 'r.grant_id')
    .innerJoin('oauth_clients as c', 'c.id', 'g.client_pk')
    .select([
      'r.token_hash',
      'r.grant_id',
      'r.organization_id',
      'g.client_pk',
      'c.client_id',
      'g.user_id',
      'g.grant_type',
      'g.scopes',
      'g.scope_display',
      'r.created_at',
      'r.expires_at',
      'r.used_at',
      'r.revoked_at',
      'g.revoked_at as grant_revoked_at',
    ])
    .select(sql<boolean>`r.expires_at is not null and r.expires_at <= now()`.as('expired'))
    .select(sql<number | null>`date_part('epoch', now() - r.used_at)`.as('used_seconds_ago'))
    .where('r.token_hash', '=', tokenHash);
  if (options.lockFamily) query = query.forUpdate('g');
  const row = await query.executeTakeFirst();
  if (!row) return undefined;
  return {
    tokenHash: row.token_hash,
    grantId: row.grant_id,
    organizationId: row.organization_id,
    clientPk: row.client_pk,
    clientId: row.client_id,
    userId: row.user_id,
    grantType: row.grant_type,
    grantScopes: row.scopes,
    grantScopeDisplay: row.scope_display,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    usedAt: row.used_at,
    usedSecondsAgo: row.used_seconds_ago,
    revokedAt: row.revoked_at,
    grantRevokedAt: row.grant_revoked_at,
    expired: row.expired,
  };
}

/**
 * Rotation's atomic step: marks the refresh token used if, and only if, it is still unused,
 * unrevoked and unexpired. Of any number of concurrent refreshes exactly one gets `true`.
 */
export async function spendRefreshToken(db: Db, tokenHash: string): Promise<boolean> {
  const row = await db
    .updateTable('oauth_refresh_tokens')
    .set({ used_at: sql<Date>`now()` })
    .where('token_hash', '=', tokenHash)
    .where('used_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]))
    .returning('token_hash')
    .executeTakeFirst();
  return row !== undefined;
}

export async function revokeAccessToken(db: Db, tokenHash: string): Promise<void> {
  await db
    .updateTable('oauth_access_tokens')
    .set({ revoked_at: sql<Date>`now()` })
    .where('token_hash', '=', tokenHash)
    .where('revoked_at', 'is', null)
    .execute();
}

/** Revokes a whole family: the grant, and every access and refresh token issued under it. */
export async function revokeGrant(db: Db, grantId: string): Promise<void> {
  await db
    .updateTable('oauth_grants')
    .set({ revoked_at: sql<Date>`now()` })
    .where('id', '=', grantId)
    .where('revoked_at', 'is', null)
    .execute();
  await db
    .updateTable('oauth_access_tokens')
    .set({ revoked_at: sql<Date>`now()` })
    .where('grant_id', '=', grantId)
    .where('revoked_at', 'is', null)
    .execute();
  await db
    .updateTable('oauth_refresh_tokens')
    .set({ revoked_at: sql<Date>`now()` })
    .where('grant_id', '=', grantId)
    .where('revoked_at', 'is', null)
    .execute();
}

/** Grants of a user for a client (consent withdrawal from "Authorized applications"). */
export async function findGrantIds(db: Db, organizationId: string, clientPk: string, userId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('oauth_grants')
    .select('id')
    .where('organization_id', '=', organizationId)
    .where('client_pk', '=', clientPk)
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .execute();
  return rows.map((r) => r.id);
}

export interface PurgeCounts {
  accessTokens: number;
  refreshTokens: number;
  grants: number;
  authorizationCodes: number;
  deviceCodes: number;
}

const BATCH = 5000;
/** Spent or expired codes are kept this long after expiry so a late replay is still recognised. */
const CODE_RETENTION = sql`interval '1 hour'`;

/**
 * Deletes what can never be valid again, in bounded batches: expired access tokens, expired
 * refresh tokens, codes past expiry (plus a retention for replay detection), and grants left
 * without any token (finished client-credentials grants, revoked families, expired logins).
 */
export async function purgeExpired(db: Db): Promise<PurgeCounts> {
  const count = (r: { numDeletedRows?: bigint }) => Number(r.numDeletedRows ?? 0);
  const accessTokens = await db
    .deleteFrom('oauth_access_tokens')
    .where('token_hash', 'in', (eb) =>
      eb.selectFrom('oauth_access_tokens').select('token_hash').where('expires_at', '<', sql<Date>`now()`).limit(BATCH),
    )
    .executeTakeFirst();
  const refreshTokens = await db
    .deleteFrom('oauth_refresh_tokens')
    .where('token_hash', 'in', (eb) =>
      eb.selectFrom('oauth_refresh_tokens').select('token_hash').where('expires_at', '<', sql<Date>`now()`).limit(BATCH),
    )
    .executeTakeFirst();
  const authorizationCodes = await db
    .deleteFrom('oauth_authorization_codes')
    .where('expires_at', '<', sql<Date>`now() - ${CODE_RETENTION}`)
    .executeTakeFirst();
  const deviceCodes = await db
    .deleteFrom('oauth_device_codes')
    .where('expires_at', '<', sql<Date>`now() - ${CODE_RETENTION}`)
    .executeTakeFirst();
  const grants = await db
    .deleteFrom('oauth_grants')
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('oauth_grants as g')
        .select('g.id')
        .where('g.created_at', '<', sql<Date>`now() - interval '10 minutes'`)
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('oauth_access_tokens as t').select('t.token_hash').whereRef('t.grant_id', '=', 'g.id'))),
        )
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('oauth_refresh_tokens as r').select('r.token_hash').whereRef('r.grant_id', '=', 'g.id'))),
        )
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('oauth_authorization_codes as a').select('a.code_hash').whereRef('a.grant_id', '=', 'g.id'))),
        )
        .limit(BATCH),
    )
    .executeTakeFirst();
  return {
    accessTokens: count(accessTokens),
    refreshTokens: count(refreshTokens),
    grants: count(grants),
    authorizationCodes: count(authorizationCodes),
    deviceCodes: count(deviceCodes),
  };
}
