import { randomBytes } from 'node:crypto';
import { type JWK, exportJWK, generateKeyPair } from 'jose';
import { sql } from 'kysely';
import type { Db } from '../../storage/database.js';

/**
 * Signing keys of RFC 9068 JWT access tokens. One key is current (newest, not retired) and signs;
 * rotation retires it and keeps publishing it in the JWKS until every token it signed has expired
 * (`publish_until`). Private keys live in the database (like every other server secret of an
 * installation) so that every node signs with the same key.
 */

export const JWT_ALG = 'RS256';
/** Tokens are checked with up to this much clock skew between nodes. */
export const CLOCK_SKEW_SECONDS = 300;

export interface SigningKeyRow {
  kid: string;
  alg: string;
  privateJwk: JWK;
  publicJwk: JWK;
  createdAt: Date;
  retiredAt: Date | null;
  publishUntil: Date | null;
}

function toRow(row: {
  kid: string;
  alg: string;
  private_jwk: unknown;
  public_jwk: unknown;
  created_at: Date;
  retired_at: Date | null;
  publish_until: Date | null;
}): SigningKeyRow {
  const parse = (v: unknown) => (typeof v === 'string' ? (JSON.parse(v) as JWK) : (v as JWK));
  return {
    kid: row.kid,
    alg: row.alg,
    privateJwk: parse(row.private_jwk),
    publicJwk: parse(row.public_jwk),
    createdAt: row.created_at,
    retiredAt: row.retired_at,
    publishUntil: row.publish_until,
  };
}

async function newKey(): Promise<{ kid: string; privateJwk: JWK; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(JWT_ALG, { extractable: true, modulusLength: 2048 });
  const kid = randomBytes(12).toString('base64url');
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: JWT_ALG, use: 'sig' };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: JWT_ALG, use: 'sig' };
  return { kid, privateJwk, publicJwk };
}

/** Keys that verify tokens: the current ones and retired ones still published. */
export async function listPublishedKeys(db: Db): Promise<SigningKeyRow[]> {
  const rows = await db
    .selectFrom('signing_keys')
    .selectAll()
    .where((eb) => eb.or([eb('retired_at', 'is', null), eb('publish_until', '>', sql<Date>`now()`)]))
    .orderBy('created_at', 'desc')
    .execute();
  return rows.map(toRow);
}

export async function findCurrentKey(db: Db): Promise<SigningKeyRow | undefined> {
  const row = await db
    .selectFrom('signing_keys')
    .selectAll()
    .where('retired_at', 'is', null)
    .orderBy('created_at', 'desc')
    .orderBy('kid')
    .executeTakeFirst();
  return row && toRow(row);
}

/** The longest access-token lifetime of any JWT client: how long a retired key must stay published. */
async function longestJwtLifetime(db: Db): Promise<number> {
  const row = await db
    .selectFrom('oauth_clients')
    .select((eb) => eb.fn.max('access_token_ttl').as('ttl'))
    .where('token_format', '=', 'jwt')
    .executeTakeFirst();
  return Number(row?.ttl ?? 0) || 3600;
}

const LOCK = sql`select pg_advisory_xact_lock(hashtext('sensorcloud:signing_keys'))`;

/** The current key, created if there is none (nodes racing on an empty table create one). */
export async function ensureCurrentKey(db: Db): Promise<SigningKeyRow> {
  const existing = await findCurrentKey(db);
  if (existing) return existing;
  const fresh = await newKey();
  return db.transaction().execute(async (tx) => {
    await LOCK.execute(tx);
    const again = await findCurrentKey(tx);
    if (again) return again;
    await tx
      .insertInto('signing_keys')
      .values({ kid: fresh.kid, alg: JWT_ALG, private_jwk: JSON.stringify(fresh.privateJwk), public_jwk: JSON.stringify(fresh.publicJwk) })
      .execute();
    return (await findCurrentKey(tx)) as SigningKeyRow;
  });
}

export interface RotationResult {
  kid: string;
  retired: { kid: string; publishUntil: Date }[];
}

/**
 * Makes a new current key and retires the others, keeping them in the JWKS until the tokens they
 * signed have expired (longest JWT client lifetime plus clock skew).
 */
export async function rotateSigningKeys(db: Db): Promise<RotationResult> {
  const fresh = await newKey();
  return db.transaction().execute(async (tx) => {
    await LOCK.execute(tx);
    const keep = (await longestJwtLifetime(tx)) + CLOCK_SKEW_SECONDS;
    const retired = await tx
      .updateTable('signing_keys')
      .set({ retired_at: sql<Date>`now()`, publish_until: sql<Date>`now() + make_interval(secs => ${keep})` })
      .where('retired_at', 'is', null)
      .returning(['kid', 'publish_until'])
      .execute();
    await tx
      .insertInto('signing_keys')
      .values({ kid: fresh.kid, alg: JWT_ALG, private_jwk: JSON.stringify(fresh.privateJwk), public_jwk: JSON.stringify(fresh.publicJwk) })
      .execute();
    return { kid: fresh.kid, retired: retired.map((r) => ({ kid: r.kid, publishUntil: r.publish_until as Date })) };
  });
}

/** Deletes retired keys no longer published. */
export async function purgeRetiredKeys(db: Db): Promise<number> {
  const result = await db
    .deleteFrom('signing_keys')
    .where('retired_at', 'is not', null)
    .where('publish_until', '<=', sql<Date>`now()`)
    .executeTakeFirst();
  return Number(result.numDeletedRows ?? 0);
}
