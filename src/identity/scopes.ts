import type { Role } from '../storage/schema.js';

/**
 * Scopes, roles and the seed aliases (SPEC §2) in one place. Every grant, the consent page, API
 * key creation and the bearer check ask this module; nothing else knows what a role may do.
 */

export const SCOPES = [
  'devices:read',
  'devices:write',
  'readings:read',
  'readings:write',
  'alarms:read',
  'alarms:write',
  'calibrations:read',
  'calibrations:write',
  'users:read',
  'users:write',
  'groups:read',
  'groups:write',
  'webhooks:read',
  'webhooks:write',
  'api_keys:write',
  'applications:write',
  'sql_access:write',
  'offline_access',
] as const;

export type Scope = (typeof SCOPES)[number];

export const SCOPE_ALIASES = ['*', 'me', 'app', 'basic'] as const;
export type ScopeAlias = (typeof SCOPE_ALIASES)[number];

/** What a client may list in its allowed scopes or a request may ask for. */
export type ScopeToken = Scope | ScopeAlias;

export const ROLES = ['owner', 'admin', 'member', 'viewer'] as const satisfies readonly Role[];

const SCOPE_SET: ReadonlySet<string> = new Set(SCOPES);
const ALIAS_SET: ReadonlySet<string> = new Set(SCOPE_ALIASES);
const ROLE_SET: ReadonlySet<string> = new Set(ROLES);

export const isScope = (value: string): value is Scope => SCOPE_SET.has(value);
export const isScopeAlias = (value: string): value is ScopeAlias => ALIAS_SET.has(value);
export const isScopeToken = (value: string): value is ScopeToken => isScope(value) || isScopeAlias(value);
export const isRole = (value: string): value is Role => ROLE_SET.has(value);

const READ_SCOPES = SCOPES.filter((s) => s.endsWith(':read'));
const ALL: ReadonlySet<Scope> = new Set(SCOPES);
const BASIC: ReadonlySet<Scope> = new Set<Scope>(['devices:read', 'readings:read']);

// offline_access is not a data permission: every role holds it.
const ROLE_SCOPES: Record<Role, ReadonlySet<Scope>> = {
  owner: ALL,
  admin: ALL,
  member: new Set<Scope>([...READ_SCOPES, 'readings:write', 'alarms:write', 'calibrations:write', 'offline_access']),
  viewer: new Set<Scope>([...READ_SCOPES, 'offline_access']),
};

export function roleScopes(role: Role): ReadonlySet<Scope> {
  return ROLE_SCOPES[role];
}

/** The permissions a client-credentials token bound to a user acts with (SmartSense): reads only. */
export function boundUserScopes(role: Role): ReadonlySet<Scope> {
  return new Set([...ROLE_SCOPES[role]].filter((s) => s.endsWith(':read') || s === 'offline_access'));
}

/** Parses a space-delimited scope parameter (RFC 6749 §3.3). Empty or absent gives []. */
export function parseScopeParam(value: string | undefined | null): string[] {
  if (!value) return [];
  return [...new Set(value.split(' ').filter((s) => s !== ''))];
}

/**
 * The most a client could ever be granted, from its allowed list. `*` and `me` open every scope
 * (the subject's role still bounds them); `app` adds nothing of its own (it means "what the client
 * may have"), `basic` its two read scopes.
 */
export function clientCeiling(allowed: readonly ScopeToken[]): ReadonlySet<Scope> {
  const ceiling = new Set<Scope>();
  for (const entry of allowed) {
    if (entry === '*' || entry === 'me') return ALL;
    if (entry === 'basic') for (const s of BASIC) ceiling.add(s);
    else if (isScope(entry)) ceiling.add(entry);
  }
  return ceiling;
}

export interface ScopeRequest {
  /** Scope tokens as requested (already split); empty means "the client's default". */
  requested: readonly string[];
  /** The client's allowed list, aliases included, as registered. */
  clientAllowed: readonly ScopeToken[];
  /**
   * The subject's own permissions when a user is involved (a user's role scopes, or a bound
   * user's read scopes); `undefined` for an application acting for itself.
   */
  subjectScopes?: ReadonlySet<Scope> | undefined;
  /** True when the token represents a user (password, authorization code, device code). */
  userToken: boolean;
}

export type ScopeDecision =
  | { ok: true; scopes: ReadonlySet<Scope>; granted: string }
  | { ok: false; error: 'invalid_scope'; description: string };

function intersect(a: ReadonlySet<Scope>, b: ReadonlySet<Scope> | undefined): Set<Scope> {
  return new Set([...a].filter((s) => b === undefined || b.has(s)));
}

/**
 * Effective scopes = requested ∩ client's ceiling ∩ subject's scopes (SPEC §2). Aliases are
 * expanded here and reported back as requested; a scope the client may not have is
 * `invalid_scope`, one the user's role lacks is silently narrowed away.
 */
export function decideScopes(request: ScopeRequest): ScopeDecision {
  // `me` stands for a user's role scopes: for an application acting for itself it opens nothing
  // (otherwise a client registered with only `me` would get every scope on client_credentials).
  const ceiling = clientCeiling(request.userToken ? request.clientAllowed : request.clientAllowed.filter((token) => token !== 'me'));
  const requested = request.requested.length > 0 ? [...new Set(request.requested)] : defaultScopes(request);
  const listed = new Set<string>(request.clientAllowed);
  const effective = new Set<Scope>();
  const granted: string[] = [];

  for (const token of requested) {
    if (!isScopeToken(token)) {
      return { ok: false, error: 'invalid_scope', description: `unknown scope "${token}"` };
    }
    let expansion: ReadonlySet<Scope>;
    switch (token) {
      case '*':
        expansion = ceiling;
        break;
      case 'me':
        if (!request.userToken) {
          return { ok: false, error: 'invalid_scope', description: 'scope "me" requires a user token' };
        }
        expansion = request.subjectScopes ?? ALL;
        break;
      case 'app':
        if (request.userToken) {
          return { ok: false, error: 'invalid_scope', description: 'scope "app" is for application tokens, not user tokens' };
        }
        expansion = ceiling;
        break;
      case 'basic':
        expansion = BASIC;
        break;
      default:
        expansion = new Set([token]);
    }
    const permitted = listed.has(token) || [...expansion].every((s) => ceiling.has(s));
    if (!permitted) {
      return { ok: false, error: 'invalid_scope', description: `scope "${token}" is not allowed for this client` };
    }
    const kept = intersect(intersect(expansion, ceiling), request.subjectScopes);
    for (const s of kept) effective.add(s);
    // Aliases are echoed as asked (seed behaviour); a plain scope only if it survived the narrowing.
    if (isScopeAlias(token) || kept.size > 0) granted.push(token);
  }

  if (effective.size === 0) {
    return { ok: false, error: 'invalid_scope', description: 'none of the requested scopes can be granted' };
  }
  return { ok: true, scopes: effective, granted: granted.join(' ') };
}

/** No scope parameter: the client's registered list, minus the alias that does not fit the token kind. */
function defaultScopes(request: ScopeRequest): string[] {
  const misfit = request.userToken ? 'app' : 'me';
  return request.clientAllowed.filter((token) => token !== misfit);
}

/** True when `held` covers every scope in `needed`. */
export function hasScopes(held: ReadonlySet<Scope>, needed: readonly Scope[]): boolean {
  return needed.every((s) => held.has(s));
}
