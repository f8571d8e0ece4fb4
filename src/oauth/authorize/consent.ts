import { type Scope, type ScopeToken, decideScopes, isScope, roleScopes } from '../../identity/scopes.js';
import type { Role } from '../../storage/schema.js';

/**
 * The consent rules (SPEC §2–§3, Bluesonde): what a client asks for is first checked against the
 * client alone (a scope it may not have is `invalid_scope`); then a user may approve only if their
 * role holds every scope asked for by name. The subject-relative aliases (`*`, `me`) are the
 * exception by definition: they mean "whatever this user may hold", so they narrow instead.
 */

export type ClientScopeCheck = { ok: true } | { ok: false; description: string };

/** The client-side half, before anyone has signed in: may this client ask for these scopes? */
export function checkClientScopes(clientAllowed: readonly ScopeToken[], requested: readonly string[]): ClientScopeCheck {
  const decision = decideScopes({ requested, clientAllowed, userToken: true });
  return decision.ok ? { ok: true } : { ok: false, description: decision.description };
}

export type RefusalReason = 'not_member' | 'role_lacks_scopes' | 'nothing_grantable';

export interface ConsentEvaluation {
  canApprove: boolean;
  reason: RefusalReason | null;
  role: Role | null;
  /** Scopes asked for by name that the user's role does not hold. */
  missing: Scope[];
  /** What approving grants (empty when it cannot be approved). */
  scopes: Scope[];
  /** The scope string reported to the client (aliases echoed as asked). */
  scopeDisplay: string;
  /** What to list on the page: the grant, or, when refused, what was asked for. */
  shown: Scope[];
}

/** Evaluates a request for one user, whose role in the client's organization is `role` (null: not a member). */
export function evaluateConsent(clientAllowed: readonly ScopeToken[], requested: readonly string[], role: Role | null): ConsentEvaluation {
  const asked = requested.length > 0 ? requested : clientAllowed.filter((t) => t !== 'app');
  const byName = new Set<Scope>();
  for (const token of asked) {
    if (isScope(token)) byName.add(token);
    else if (token === 'basic') for (const s of ['devices:read', 'readings:read'] as const) byName.add(s);
  }
  const unnarrowed = decideScopes({ requested, clientAllowed, userToken: true });
  const shown = unnarrowed.ok ? order(unnarrowed.scopes) : [...byName];
  if (role === null) {
    return { canApprove: false, reason: 'not_member', role, missing: [], scopes: [], scopeDisplay: '', shown };
  }
  const held = roleScopes(role);
  const missing = order([...byName].filter((s) => !held.has(s)));
  if (missing.length > 0) {
    return { canApprove: false, reason: 'role_lacks_scopes', role, missing, scopes: [], scopeDisplay: '', shown };
  }
  const decision = decideScopes({ requested, clientAllowed, subjectScopes: held, userToken: true });
  if (!decision.ok) {
    return { canApprove: false, reason: 'nothing_grantable', role, missing: [], scopes: [], scopeDisplay: '', shown };
  }
  const scopes = order(decision.scopes);
  return { canApprove: true, reason: null, role, missing: [], scopes, scopeDisplay: decision.granted, shown: scopes };
}

/** True when a remembered consent already covers every scope of this grant. */
export function consentCovers(remembered: readonly string[] | undefined, scopes: readonly Scope[]): boolean {
  if (!remembered) return false;
  const set = new Set(remembered);
  return scopes.every((s) => set.has(s));
}

const SCOPE_ORDER = new Map<string, number>();
export function order(scopes: Iterable<Scope>): Scope[] {
  return [...scopes].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}
function rank(scope: Scope): number {
  if (SCOPE_ORDER.size === 0) for (const [i, s] of Object.keys(SCOPE_LABELS).entries()) SCOPE_ORDER.set(s, i);
  return SCOPE_ORDER.get(scope) ?? 1000;
}

/** What each scope lets the application do, in the words shown on the consent page. */
export const SCOPE_LABELS: Record<Scope, string> = {
  'devices:read': 'See your devices, sensors and locations',
  'devices:write': 'Add, change and remove devices and sensors',
  'readings:read': 'Read sensor readings',
  'readings:write': 'Submit sensor readings',
  'alarms:read': 'See alarms and alarm thresholds',
  'alarms:write': 'Acknowledge, resolve and configure alarms',
  'calibrations:read': 'See calibration records',
  'calibrations:write': 'Record calibrations',
  'users:read': 'See the people in your organization',
  'users:write': 'Invite, change and remove people',
  'groups:read': 'See groups',
  'groups:write': 'Create and change groups',
  'webhooks:read': 'See webhook subscriptions and deliveries',
  'webhooks:write': 'Create and change webhooks',
  'api_keys:write': 'Create and revoke API keys',
  'applications:write': 'Register and change OAuth applications',
  'sql_access:write': 'Manage read-only SQL access',
  offline_access: 'Keep access when you are not using it (refresh tokens)',
};
