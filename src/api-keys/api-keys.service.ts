import type { BearerAuthenticator, CredentialResolver } from '../auth/bearer.js';
import type { Principal } from '../auth/principal.js';
import { HttpProblem, type FieldError } from '../http/problem.js';
import { type Scope, isScope, roleScopes } from '../identity/scopes.js';
import { activeRole } from '../identity/members.repo.js';
import { generateToken, sha256 } from '../security/tokens.js';
import type { Db } from '../storage/database.js';
import { isUuid } from '../storage/sql.js';
import { type AuditSource, auditTarget } from '../audit/audit.repo.js';
import type { Role } from '../storage/schema.js';
import {
  type ApiKeyRow,
  ApiKeyNameTakenError,
  type NewApiKey,
  findActiveApiKeyByHash,
  findApiKey,
  insertApiKey,
  replaceApiKeySecret,
  revokeApiKey,
  touchApiKey,
} from './api-keys.repo.js';

/**
 * API keys (Bluesonde): created by a user holding `api_keys:write`, with scopes that must be held
 * both by the creator's role and by the credential used to create the key (so a narrow token
 * cannot mint a wider key); shown once; used as `Authorization: Bearer sk_live_…`. A key acts as
 * its creator, within the key's scopes and the creator's current role.
 */

export const API_KEY_PREFIX = 'sk_live_';
/** Characters shown in lists to tell keys apart (the prefix plus 4 random characters). */
export const DISPLAY_PREFIX_LENGTH = API_KEY_PREFIX.length + 4;

export const displayPrefix = (key: string): string => key.slice(0, DISPLAY_PREFIX_LENGTH);

/** Longest name of a key (/v1/api-keys and the console). */
export const API_KEY_NAME_MAX = 100;

export interface CreateApiKeyInput {
  name: string;
  scopes: string[];
  expiresAt?: Date | undefined;
}

/** The person behind the credential, and their role, as long as they are an active member. */
async function creatorRole(db: Db, principal: Principal, verb: 'create' | 'rotate'): Promise<{ userId: string; role: Role }> {
  if (principal.userId === null)
    throw new HttpProblem({ status: 403, detail: `API keys are ${verb}d by a user: use a user token or a user-created API key.` });
  const role = await activeRole(db, principal.organizationId, principal.userId);
  if (!role) throw new HttpProblem({ status: 403, detail: `Only active members of the organization can ${verb} API keys.` });
  return { userId: principal.userId, role };
}

/** A key can only carry scopes its creator's role holds and the credential making it holds. */
function checkScopesHeld(principal: Principal, role: Role, scopes: readonly string[]): void {
  const held = roleScopes(role);
  const beyondRole = scopes.filter((s) => !held.has(s as Scope));
  if (beyondRole.length > 0) {
    throw new HttpProblem({
      status: 403,
      detail: `Your role (${role}) does not hold ${beyondRole.join(', ')}; an API key can only carry scopes its creator holds.`,
    });
  }
  const beyondCredential = scopes.filter((s) => !principal.scopes.has(s as Scope));
  if (beyondCredential.length > 0) {
    throw new HttpProblem({ status: 403, detail: `The credential used for this request does not hold ${beyondCredential.join(', ')}.` });
  }
}

/** A new key (shown once) for what its creator was allowed, stored hashed and audited in one transaction. */
export async function issueApiKey(
  db: Db,
  fields: Omit<NewApiKey, 'keyHash' | 'prefix'>,
  source: AuditSource,
): Promise<{ key: string; row: ApiKeyRow }> {
  const key = generateToken(API_KEY_PREFIX);
  const row = await db.transaction().execute(async (tx) => {
    const row = await insertApiKey(tx, { ...fields, keyHash: sha256(key), prefix: displayPrefix(key) });
    await auditApiKey(tx, source, 'api_key.created', row);
    return row;
  });
  return { key, row };
}

export async function createApiKey(
  db: Db,
  principal: Principal,
  input: CreateApiKeyInput,
  source: AuditSource,
): Promise<{ key: string; row: ApiKeyRow }> {
  const creator = await creatorRole(db, principal, 'create');

  const errors: FieldError[] = [];
  const name = input.name.trim();
  if (name === '') errors.push({ pointer: '/body/name', detail: 'name must not be empty' });
  if (name.length > API_KEY_NAME_MAX) errors.push({ pointer: '/body/name', detail: `name must be at most ${API_KEY_NAME_MAX} characters` });
  const scopes = [...new Set(input.scopes)];
  scopes.forEach((scope, i) => {
    if (!isScope(scope)) errors.push({ pointer: `/body/scopes/${i}`, detail: `unknown scope "${scope}"` });
  });
  if (scopes.length === 0) errors.push({ pointer: '/body/scopes', detail: 'scopes must name at least one scope' });
  if (input.expiresAt && input.expiresAt.getTime() <= Date.now())
    errors.push({ pointer: '/body/expires_at', detail: 'expires_at must be in the future' });
  if (errors.length > 0) throw new HttpProblem({ status: 400, detail: errors.map((e) => e.detail).join('; '), errors });
  checkScopesHeld(principal, creator.role, scopes);

  try {
    return await issueApiKey(
      db,
      { organizationId: principal.organizationId, name, scopes, createdBy: creator.userId, expiresAt: input.expiresAt ?? null },
      source,
    );
  } catch (error) {
    if (error instanceof ApiKeyNameTakenError)
      throw new HttpProblem({ status: 409, detail: `An active API key named "${name}" already exists.` });
    throw error;
  }
}

/**
 * A new secret for a key, same id, name, scopes and expiry; the old one stops working at once: it
 * is dropped from every node's bearer cache after the commit, as revocation does. Only the key's
 * creator rotates it, with the rules of creating it: a key acts as its creator, so rotating
 * someone else's would hand their access over. Undefined when the organization has no such key.
 */
export async function rotateApiKeyNow(
  db: Db,
  bearer: Pick<BearerAuthenticator, 'revoked'>,
  principal: Principal,
  id: string,
  source: AuditSource,
): Promise<{ key: string; row: ApiKeyRow } | undefined> {
  const existing = await findApiKey(db, principal.organizationId, id);
  if (!existing) return undefined;
  if (existing.revokedAt) throw new HttpProblem({ status: 409, detail: 'The API key is revoked; create a new one.' });
  if (existing.expiresAt && existing.expiresAt.getTime() <= Date.now())
    throw new HttpProblem({ status: 409, detail: 'The API key has expired; create a new one.' });
  const creator = await creatorRole(db, principal, 'rotate');
  if (existing.createdBy !== creator.userId)
    throw new HttpProblem({
      status: 403,
      detail: 'Only the person who created an API key can rotate it (the key acts as them); revoke it and create a new one instead.',
    });
  checkScopesHeld(principal, creator.role, existing.scopes);
  const key = generateToken(API_KEY_PREFIX);
  const row = await db.transaction().execute(async (tx) => {
    const row = await replaceApiKeySecret(tx, principal.organizationId, id, { keyHash: sha256(key), prefix: displayPrefix(key) });
    if (row) await auditApiKey(tx, source, 'api_key.rotated', row);
    return row;
  });
  // Revoked or expired between the two reads.
  if (!row) throw new HttpProblem({ status: 409, detail: 'The API key is no longer active; create a new one.' });
  await bearer.revoked({ revocationGroup: id }, db);
  return { key, row };
}

/**
 * Revokes a key of the organization (audited the first time) and drops it from every node's
 * bearer cache, so the next request with it is refused; false when it has no such key.
 */
export async function revokeApiKeyNow(
  db: Db,
  bearer: Pick<BearerAuthenticator, 'revoked'>,
  organizationId: string,
  id: string,
  source: AuditSource,
): Promise<boolean> {
  if (!isUuid(id)) return false;
  const found = await db.transaction().execute(async (tx) => {
    const revoked = await revokeApiKey(tx, organizationId, id);
    if (revoked === undefined) return false;
    if (revoked !== 'already') await auditApiKey(tx, source, 'api_key.revoked', { ...revoked, organizationId });
    return true;
  });
  if (found) await bearer.revoked({ revocationGroup: id }, db);
  return found;
}

/** An API key's entry in the audit log: its name, scopes and expiry, never the key. */
export const auditApiKey = auditTarget(
  'api_key',
  (key: Pick<ApiKeyRow, 'id' | 'organizationId' | 'name'> & Partial<Pick<ApiKeyRow, 'scopes' | 'expiresAt'>>) => ({
    organizationId: key.organizationId,
    id: key.id,
    details: {
      name: key.name,
      ...(key.scopes && { scopes: key.scopes }),
      ...(key.expiresAt !== undefined && { expires_at: key.expiresAt?.toISOString() ?? null }),
    },
  }),
);

const TOUCH_INTERVAL_MS = 60_000;

/** The bearer resolver for `sk_live_` keys; records last use at most once a minute per key. */
export function apiKeyResolver(db: Db, now: () => number = Date.now): CredentialResolver {
  const touched = new Map<string, number>();
  return {
    prefix: API_KEY_PREFIX,
    async resolve(token, hash) {
      if (token.length > 200) return null;
      const key = await findActiveApiKeyByHash(db, hash);
      if (!key?.creatorActive) return null;
      const t = now();
      if (
        (key.lastUsedAt === null || t - key.lastUsedAt.getTime() >= TOUCH_INTERVAL_MS) &&
        t - (touched.get(key.id) ?? 0) >= TOUCH_INTERVAL_MS
      ) {
        touched.set(key.id, t);
        if (touched.size > 100_000) touched.delete(touched.keys().next().value as string);
        touchApiKey(db, key.id).catch(() => touched.delete(key.id));
      }
      const held = key.creatorRole ? roleScopes(key.creatorRole) : undefined;
      const scopes = new Set(key.scopes.filter((s): s is Scope => isScope(s) && (held === undefined || held.has(s))));
      const principal: Principal = {
        kind: 'api_key',
        organizationId: key.organizationId,
        userId: key.createdBy,
        clientId: null,
        scopes,
        credentialHash: hash,
        revocationGroup: key.id,
        expiresAt: key.expiresAt,
      };
      return principal;
    },
  };
}
