import type { CredentialResolver } from '../auth/bearer.js';
import type { Principal } from '../auth/principal.js';
import { HttpProblem, type FieldError } from '../http/problem.js';
import { type Scope, isScope, roleScopes } from '../identity/scopes.js';
import { activeRole } from '../identity/members.repo.js';
import { generateToken, sha256 } from '../security/tokens.js';
import type { Db } from '../storage/database.js';
import { type ApiKeyRow, ApiKeyNameTakenError, findActiveApiKeyByHash, insertApiKey, touchApiKey } from './api-keys.repo.js';

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

export interface CreateApiKeyInput {
  name: string;
  scopes: string[];
  expiresAt?: Date | undefined;
}

export async function createApiKey(db: Db, principal: Principal, input: CreateApiKeyInput): Promise<{ key: string; row: ApiKeyRow }> {
  if (principal.userId === null)
    throw new HttpProblem({ status: 403, detail: 'API keys are created by a user: use a user token or a user-created API key.' });
  const memberRole = await activeRole(db, principal.organizationId, principal.userId);
  if (!memberRole) throw new HttpProblem({ status: 403, detail: 'Only active members of the organization can create API keys.' });

  const errors: FieldError[] = [];
  const name = input.name.trim();
  if (name === '') errors.push({ pointer: '/body/name', detail: 'name must not be empty' });
  const scopes = [...new Set(input.scopes)];
  scopes.forEach((scope, i) => {
    if (!isScope(scope)) errors.push({ pointer: `/body/scopes/${i}`, detail: `unknown scope "${scope}"` });
  });
  if (scopes.length === 0) errors.push({ pointer: '/body/scopes', detail: 'scopes must name at least one scope' });
  if (input.expiresAt && input.expiresAt.getTime() <= Date.now())
    errors.push({ pointer: '/body/expires_at', detail: 'expires_at must be in the future' });
  if (errors.length > 0) throw new HttpProblem({ status: 400, detail: errors.map((e) => e.detail).join('; '), errors });

  const role = roleScopes(memberRole);
  const beyondRole = scopes.filter((s) => !role.has(s as Scope));
  if (beyondRole.length > 0) {
    throw new HttpProblem({
      status: 403,
      detail: `Your role (${memberRole}) does not hold ${beyondRole.join(', ')}; an API key can only carry scopes its creator holds.`,
    });
  }
  const beyondCredential = scopes.filter((s) => !principal.scopes.has(s as Scope));
  if (beyondCredential.length > 0) {
    throw new HttpProblem({ status: 403, detail: `The credential used for this request does not hold ${beyondCredential.join(', ')}.` });
  }

  const key = generateToken(API_KEY_PREFIX);
  try {
    const row = await insertApiKey(db, {
      organizationId: principal.organizationId,
      name,
      keyHash: sha256(key),
      prefix: displayPrefix(key),
      scopes,
      createdBy: principal.userId,
      expiresAt: input.expiresAt ?? null,
    });
    return { key, row };
  } catch (error) {
    if (error instanceof ApiKeyNameTakenError)
      throw new HttpProblem({ status: 409, detail: `An active API key named "${name}" already exists.` });
    throw error;
  }
}

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
