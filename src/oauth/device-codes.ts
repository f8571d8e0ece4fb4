import { randomInt } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../storage/database.js';
import { generateToken, sha256 } from '../security/tokens.js';

/**
 * Device authorization codes (RFC 8628). `POST /oauth/device_authorization` creates a row; the
 * `/device` page finds it by user code (`findPendingDeviceCode`) and records the user's decision
 * (`decideDeviceCode`); the token endpoint's device_code grant polls it (`pollDeviceCode`).
 * Only the SHA-256 of the device code is stored; the user code is short and human-typed, so it
 * is stored as is (normalised) and is useless without a logged-in user approving it.
 */

export const DEVICE_CODE_PREFIX = 'sc_dc_';
/** RFC 8628 §6.1: 20 consonants (no vowels, so no words), 8 characters ≈ 34.5 bits. */
const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';
const USER_CODE_LENGTH = 8;

/** Upper-cases and drops everything outside the alphabet (dashes, spaces), as typed by people. */
export function normalizeUserCode(input: string): string {
  return input.toUpperCase().replace(/[^A-Z]/g, '');
}

/** `BCDF-GHJK`: the form shown to people. */
export function formatUserCode(code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

function randomUserCode(): string {
  let code = '';
  for (let i = 0; i < USER_CODE_LENGTH; i++) code += USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)];
  return code;
}

export interface NewDeviceAuthorization {
  deviceCode: string;
  /** Display form (`XXXX-XXXX`). */
  userCode: string;
  expiresIn: number;
  interval: number;
}

export async function createDeviceAuthorization(
  db: Db,
  input: { clientPk: string; organizationId: string; requestedScope: string | null; ttlSeconds: number; intervalSeconds: number },
): Promise<NewDeviceAuthorization> {
  const deviceCode = generateToken(DEVICE_CODE_PREFIX);
  for (let attempt = 0; ; attempt++) {
    const userCode = randomUserCode();
    const inserted = await db
      .insertInto('oauth_device_codes')
      .values({
        device_code_hash: sha256(deviceCode),
        user_code: userCode,
        client_pk: input.clientPk,
        organization_id: input.organizationId,
        requested_scope: input.requestedScope,
        interval_seconds: input.intervalSeconds,
        expires_at: sql<Date>`now() + make_interval(secs => ${input.ttlSeconds})`,
      })
      .onConflict((oc) => oc.column('user_code').doNothing())
      .returning('user_code')
      .executeTakeFirst();
    if (inserted) return { deviceCode, userCode: formatUserCode(userCode), expiresIn: input.ttlSeconds, interval: input.intervalSeconds };
    if (attempt >= 5) throw new Error('could not allocate a unique user code');
  }
}

/** What the /device page shows before asking the user to approve. */
export interface PendingDeviceCode {
  /** Display form (`XXXX-XXXX`). */
  userCode: string;
  organizationId: string;
  clientPk: string;
  clientId: string;
  clientName: string;
  privacyPolicyUrl: string | null;
  /** The client's allowed scopes (aliases included), for decideScopes. */
  clientScopes: string[];
  /** The `scope` parameter the device asked for (space-delimited), or null for the client's default. */
  requestedScope: string | null;
  expiresAt: Date;
}

/** The pending, unexpired device authorization with this user code (any case, dashes optional). */
export async function findPendingDeviceCode(db: Db, userCode: string): Promise<PendingDeviceCode | undefined> {
  const code = normalizeUserCode(userCode);
  if (code.length !== USER_CODE_LENGTH) return undefined;
  const row = await db
    .selectFrom('oauth_device_codes as d')
    .innerJoin('oauth_clients as c', 'c.id', 'd.client_pk')
    .select([
      'd.user_code',
      'd.organization_id',
      'd.client_pk',
      'd.requested_scope',
      'd.expires_at',
      'c.client_id',
      'c.name',
      'c.privacy_policy_url',
      'c.scopes',
    ])
    .where('d.user_code', '=', code)
    .where('d.status', '=', 'pending')
    .where('d.expires_at', '>', sql<Date>`now()`)
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    userCode: formatUserCode(row.user_code),
    organizationId: row.organization_id,
    clientPk: row.client_pk,
    clientId: row.client_id,
    clientName: row.name,
    privacyPolicyUrl: row.privacy_policy_url,
    clientScopes: row.scopes,
    requestedScope: row.requested_scope,
    expiresAt: row.expires_at,
  };
}

export interface DeviceDecision {
  userId: string;
  /** Must be the device code's organization (the client's); a mismatch decides nothing. */
  organizationId: string;
  approve: boolean;
  /** Effective scopes (from decideScopes with the user's role); ignored on deny. */
  scopes: readonly string[];
  scopeDisplay: string;
}

/**
 * Records the user's approval or denial of a pending device code. Returns false when there is no
 * such pending, unexpired code in that organization (already decided, expired, or mistyped).
 */
export async function decideDeviceCode(db: Db, userCode: string, decision: DeviceDecision): Promise<boolean> {
  const code = normalizeUserCode(userCode);
  if (code.length !== USER_CODE_LENGTH) return false;
  if (decision.approve && decision.scopes.length === 0) throw new Error('an approved device code needs at least one scope');
  const updated = await db
    .updateTable('oauth_device_codes')
    .set({
      status: decision.approve ? 'approved' : 'denied',
      user_id: decision.userId,
      scopes: decision.approve ? [...decision.scopes] : null,
      scope_display: decision.approve ? decision.scopeDisplay : null,
    })
    .where('user_code', '=', code)
    .where('organization_id', '=', decision.organizationId)
    .where('status', '=', 'pending')
    .where('expires_at', '>', sql<Date>`now()`)
    .returning('user_code')
    .executeTakeFirst();
  return updated !== undefined;
}

export type PollResult =
  | { status: 'authorization_pending' | 'slow_down' | 'access_denied' | 'expired_token' | 'invalid_grant'; interval?: number }
  | { status: 'approved'; organizationId: string; userId: string; scopes: string[]; scopeDisplay: string; deviceCodeHash: string };

/**
 * One poll of the token endpoint (RFC 8628 §3.4–3.5). Polling faster than the interval answers
 * slow_down and widens the interval by 5 s; an approved code is redeemed exactly once (a
 * conditional UPDATE), later polls get invalid_grant.
 */
export async function pollDeviceCode(db: Db, deviceCode: string, clientPk: string): Promise<PollResult> {
  const hash = sha256(deviceCode);
  const row = await db
    .selectFrom('oauth_device_codes')
    .select(['client_pk', 'status', 'interval_seconds', 'user_id', 'scopes', 'scope_display', 'organization_id'])
    .select(sql<boolean>`expires_at <= now()`.as('expired'))
    .select(sql<boolean>`last_polled_at is not null and last_polled_at > now() - make_interval(secs => interval_seconds)`.as('too_fast'))
    .where('device_code_hash', '=', hash)
    .executeTakeFirst();
  if (!row || row.client_pk !== clientPk) return { status: 'invalid_grant' };
  if (row.status === 'redeemed') return { status: 'invalid_grant' };
  if (row.expired) return { status: 'expired_token' };
  if (row.status === 'denied') return { status: 'access_denied' };
  if (row.status === 'pending') {
    const interval = row.too_fast ? row.interval_seconds + 5 : row.interval_seconds;
    await db
      .updateTable('oauth_device_codes')
      .set({ last_polled_at: sql<Date>`now()`, interval_seconds: interval })
      .where('device_code_hash', '=', hash)
      .execute();
    return { status: row.too_fast ? 'slow_down' : 'authorization_pending', interval };
  }
  const redeemed = await db
    .updateTable('oauth_device_codes')
    .set({ status: 'redeemed', last_polled_at: sql<Date>`now()` })
    .where('device_code_hash', '=', hash)
    .where('status', '=', 'approved')
    .returning(['user_id', 'scopes', 'scope_display', 'organization_id'])
    .executeTakeFirst();
  if (!redeemed?.user_id || !redeemed.scopes || redeemed.scope_display === null) return { status: 'invalid_grant' };
  return {
    status: 'approved',
    organizationId: redeemed.organization_id,
    userId: redeemed.user_id,
    scopes: redeemed.scopes,
    scopeDisplay: redeemed.scope_display,
    deviceCodeHash: hash,
  };
}
