import { ApiKeyNameTakenError } from '../api-keys/api-keys.repo.js';
import { issueApiKey } from '../api-keys/api-keys.service.js';
import { ApplicationRefusal, createApplication } from '../applications/applications.service.js';
import { SYSTEM } from '../audit/audit.repo.js';
import type { TokenFormat, UserAuthMode } from '../oauth/grant-types.js';
import { type Scope, isScope, roleScopes } from '../identity/scopes.js';
import { findMemberByEmail } from '../identity/users.repo.js';
import { DEFAULT_ACCESS_TOKEN_TTL } from '../oauth/clients.repo.js';
import { activeRole } from '../identity/members.repo.js';
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

/** The flag each field of a registration comes from, for the CLI's wording of the service's issues. */
const FLAGS: Record<string, string> = {
  client_id: '--client-id',
  name: '--name',
  grant_types: '--grant-types',
  scopes: '--scopes',
  redirect_uris: '--redirect-uri',
  privacy_policy_url: '--privacy-policy-url',
  bound_user: '--bound-user',
  client_secret: 'the secret',
  token_format: '--token-format',
  user_auth: '--user-auth',
};

/** Registered by the one service the API uses too (operator rules), audited as done by the server's operator. */
export async function clientCreateCommand(options: ClientCreateOptions): Promise<void> {
  const accessTokenTtl = ttl(options.accessTokenTtl, '--access-token-ttl') ?? DEFAULT_ACCESS_TOKEN_TTL;
  const refreshTokenTtl = ttl(options.refreshTokenTtl, '--refresh-token-ttl') ?? null;
  const chosenSecret = !options.public && options.secretStdin ? await readPassword(true) : undefined;

  await withDatabase(async ({ db }) => {
    const org = await organizationBySlug(db, options.org);
    let boundUserId: string | null = null;
    if (options.boundUser) {
      const member = await findMemberByEmail(db, org.id, options.boundUser);
      if (!member) throw new CliError(`--bound-user: ${options.boundUser} is not a member of ${org.slug}`);
      boundUserId = member.id;
    }
    let secret: string | undefined;
    try {
      ({ secret } = await createApplication(
        db,
        {
          clientId: options.clientId,
          name: options.name ?? options.clientId,
          public: options.public ?? false,
          grantTypes: list(options.grantTypes),
          scopes: list(options.scopes),
          redirectUris: options.redirectUri ?? [],
          privacyPolicyUrl: options.privacyPolicyUrl ?? null,
          tokenFormat: options.tokenFormat,
          accessTokenTtl,
          refreshTokenTtl,
          secret: chosenSecret,
          boundUserId,
          userAuth: options.userAuth,
          resourceServer: options.resourceServer ?? false,
        },
        {
          organizationId: org.id,
          policy: 'operator',
          userId: null,
          audit: { organizationId: org.id, actor: { kind: 'system', id: null }, sourceAddress: null },
        },
      ));
    } catch (error) {
      if (!(error instanceof ApplicationRefusal)) throw error;
      if (error.issues.length === 0) throw new CliError(error.message);
      const issues = error.issues.map((issue) => `${FLAGS[issue.path[0] as string] ?? issue.path[0]}: ${issue.message}`);
      throw new CliError(issues.join('; '), 2);
    }
    print(`created client ${options.clientId} in ${org.slug}`);
    if (secret !== undefined && chosenSecret === undefined) printSecret('client secret (shown once):', secret);
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
