import { ApiKeyNameTakenError } from '../api-keys/api-keys.repo.js';
import { issueApiKey } from '../api-keys/api-keys.service.js';
import { SYSTEM } from '../audit/audit.repo.js';
import { GRANT_TYPES, type GrantType, type TokenFormat, type UserAuthMode, isGrantType } from '../oauth/grant-types.js';
import { type Scope, isScope, isScopeToken, roleScopes } from '../identity/scopes.js';
import { findMemberByEmail } from '../identity/users.repo.js';
import { DEFAULT_ACCESS_TOKEN_TTL, findClientByClientId, saveClient } from '../oauth/clients.repo.js';
import { activeRole } from '../identity/members.repo.js';
import { redirectUriProblem } from '../provisioning/validate.js';
import { hashPassword } from '../security/passwords.js';
import { generateToken } from '../security/tokens.js';
import { organizationBySlug, withDatabase } from './commands.js';
import { CliError, print, printSecret, readPassword } from './io.js';

/**
 * `sensorcloud client create` and `sensorcloud api-key create`: the generated client secret or
 * API key is printed once (alone on its line, for scripts) and stored only hashed — argon2id for
 * client secrets, SHA-256 for API keys — exactly as provisioning and the API store them.
 */

const list = (value: string | undefined): string[] => (value ?? '').split(/[\s,]+/).filter((v) => v !== '');

export interface ClientCreateOptions {
  org: string;
  clientId: string;
  name?: string;
  grantTypes: string;
  scopes: string;
  redirectUri?: string[];
  public?: boolean;
  secretStdin?: boolean;
  tokenFormat: TokenFormat;
  accessTokenTtl?: string;
  refreshTokenTtl?: string;
  boundUser?: string;
  userAuth: UserAuthMode;
  privacyPolicyUrl?: string;
  resourceServer?: boolean;
}

function ttl(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 60) throw new CliError(`${flag} must be an integer number of seconds, at least 60`, 2);
  return n;
}

export async function clientCreateCommand(options: ClientCreateOptions): Promise<void> {
  if (!/^[\x21-\x7e]{1,200}$/.test(options.clientId)) throw new CliError('--client-id must be 1–200 visible ASCII characters', 2);
  const grantTypes = list(options.grantTypes);
  const bad = grantTypes.filter((g) => !isGrantType(g));
  if (grantTypes.length === 0 || bad.length > 0)
    throw new CliError(`--grant-types: expected some of ${GRANT_TYPES.join(', ')}${bad.length ? `; unknown ${bad.join(', ')}` : ''}`, 2);
  const scopes = list(options.scopes);
  const badScopes = scopes.filter((s) => !isScopeToken(s));
  if (scopes.length === 0 || badScopes.length > 0)
    throw new CliError(`--scopes: ${badScopes.length ? `unknown ${badScopes.join(', ')}` : 'at least one scope is required'}`, 2);
  const redirectUris = options.redirectUri ?? [];
  for (const uri of redirectUris) {
    const problem = redirectUriProblem(uri);
    if (problem) throw new CliError(`--redirect-uri: ${problem}`, 2);
  }
  if (grantTypes.includes('authorization_code') && redirectUris.length === 0)
    throw new CliError('the authorization_code grant needs at least one --redirect-uri', 2);
  if (options.public && (grantTypes.includes('client_credentials') || grantTypes.includes('password')))
    throw new CliError('a public client cannot use the client_credentials or password grant', 2);
  if (options.boundUser && !grantTypes.includes('client_credentials'))
    throw new CliError('--bound-user only applies to clients with the client_credentials grant', 2);
  if (options.privacyPolicyUrl && !/^https?:\/\//.test(options.privacyPolicyUrl))
    throw new CliError('--privacy-policy-url must be an http(s) URL', 2);
  const accessTokenTtl = ttl(options.accessTokenTtl, '--access-token-ttl') ?? DEFAULT_ACCESS_TOKEN_TTL;
  const refreshTokenTtl = ttl(options.refreshTokenTtl, '--refresh-token-ttl') ?? null;

  let secret: string | undefined;
  if (!options.public) secret = options.secretStdin ? await readPassword(true) : generateToken('sc_cs_');
  if (secret !== undefined && secret.length < 16) throw new CliError('a client secret must be at least 16 characters', 2);

  await withDatabase(async ({ db }) => {
    const org = await organizationBySlug(db, options.org);
    if (await findClientByClientId(db, options.clientId)) throw new CliError(`client_id "${options.clientId}" already exists`);
    let boundUserId: string | null = null;
    if (options.boundUser) {
      const member = await findMemberByEmail(db, org.id, options.boundUser);
      if (!member) throw new CliError(`--bound-user: ${options.boundUser} is not a member of ${org.slug}`);
      boundUserId = member.id;
    }
    await saveClient(db, org.id, {
      clientId: options.clientId,
      name: options.name ?? options.clientId,
      secretHash: secret === undefined ? null : await hashPassword(secret),
      public: options.public ?? false,
      grantTypes: grantTypes as GrantType[],
      scopes,
      redirectUris,
      privacyPolicyUrl: options.privacyPolicyUrl ?? null,
      accessTokenTtl,
      refreshTokenTtl,
      tokenFormat: options.tokenFormat,
      boundUserId,
      userAuth: options.userAuth,
      resourceServer: options.resourceServer ?? false,
    });
    print(`created client ${options.clientId} in ${org.slug}`);
    if (secret !== undefined && !options.secretStdin) printSecret('client secret (shown once):', secret);
  });
}

export interface ApiKeyCreateOptions {
  org: string;
  name: string;
  scopes: string;
  createdBy: string;
  expiresAt?: string;
}

export async function apiKeyCreateCommand(options: ApiKeyCreateOptions): Promise<void> {
  const scopes = [...new Set(list(options.scopes))];
  const badScopes = scopes.filter((s) => !isScope(s));
  if (scopes.length === 0 || badScopes.length > 0)
    throw new CliError(`--scopes: ${badScopes.length ? `unknown ${badScopes.join(', ')}` : 'at least one scope is required'}`, 2);
  let expiresAt: Date | null = null;
  if (options.expiresAt !== undefined) {
    expiresAt = new Date(options.expiresAt);
    if (Number.isNaN(expiresAt.getTime()) || expiresAt.getTime() <= Date.now())
      throw new CliError('--expires-at must be a future RFC 3339 date-time', 2);
  }
  if (!options.name.trim()) throw new CliError('--name must not be empty', 2);
  await withDatabase(async ({ db }) => {
    const org = await organizationBySlug(db, options.org);
    const creator = await findMemberByEmail(db, org.id, options.createdBy);
    const role = creator ? await activeRole(db, org.id, creator.id) : undefined;
    if (!creator || !role) throw new CliError(`--created-by: ${options.createdBy} is not an active member of ${org.slug}`);
    const held = roleScopes(role);
    const beyond = scopes.filter((s) => !held.has(s as Scope));
    if (beyond.length > 0)
      throw new CliError(
        `${options.createdBy} (${role}) does not hold ${beyond.join(', ')}; an API key can only carry scopes its creator holds`,
      );
    let key: string;
    try {
      // The command line acts as the server itself: audited with the system actor and no address.
      ({ key } = await issueApiKey(
        db,
        { organizationId: org.id, name: options.name.trim(), scopes, createdBy: creator.id, expiresAt },
        SYSTEM,
      ));
    } catch (error) {
      if (error instanceof ApiKeyNameTakenError)
        throw new CliError(`an active API key named "${options.name}" already exists in ${org.slug}`);
      throw error;
    }
    printSecret(`created API key ${options.name.trim()} in ${org.slug}; the key (shown once):`, key);
  });
}
