import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ROLES,
  SCOPES,
  SCOPE_ALIASES,
  type Scope,
  type ScopeDecision,
  type ScopeRequest,
  type ScopeToken,
  boundUserScopes,
  clientCeiling,
  decideScopes,
  hasScopes,
  isRole,
  isScope,
  isScopeToken,
  parseScopeParam,
  roleScopes,
} from '../../src/identity/scopes.js';

const READS = ['devices:read', 'readings:read', 'alarms:read', 'calibrations:read', 'users:read', 'groups:read', 'webhooks:read'] as const;

// SPEC §2, spelled out independently of the module under test.
const CANONICAL = (
  'devices:read devices:write readings:read readings:write alarms:read alarms:write calibrations:read calibrations:write ' +
  'users:read users:write groups:read groups:write webhooks:read webhooks:write api_keys:write applications:write sql_access:write offline_access'
).split(' ');

const sorted = (scopes: Iterable<string>) => [...scopes].sort();

function granted(decision: ScopeDecision): { scopes: string[]; granted: string } {
  if (!decision.ok) throw new Error(`expected a grant, got invalid_scope: ${decision.description}`);
  return { scopes: sorted(decision.scopes), granted: decision.granted };
}

function refused(decision: ScopeDecision): string {
  if (decision.ok) throw new Error(`expected invalid_scope, got ${sorted(decision.scopes).join(' ')}`);
  expect(decision.error).toBe('invalid_scope');
  return decision.description;
}

describe('scope vocabulary', () => {
  it('is exactly the canonical list of SPEC §2', () => {
    expect(sorted(SCOPES)).toEqual(sorted(CANONICAL));
    expect(sorted(SCOPE_ALIASES)).toEqual(['*', 'app', 'basic', 'me']);
    expect(sorted(ROLES)).toEqual(['admin', 'member', 'owner', 'viewer']);
  });

  it('recognises scopes, aliases and roles, nothing else', () => {
    for (const scope of CANONICAL) expect(isScope(scope)).toBe(true);
    for (const alias of ['*', 'me', 'app', 'basic']) {
      expect(isScope(alias)).toBe(false);
      expect(isScopeToken(alias)).toBe(true);
    }
    for (const bogus of [
      '',
      'devices',
      'devices:READ',
      'Devices:read',
      'readings:delete',
      'admin',
      ' devices:read',
      '__proto__',
      'toString',
    ]) {
      expect(isScopeToken(bogus)).toBe(false);
    }
    for (const role of ['owner', 'admin', 'member', 'viewer']) expect(isRole(role)).toBe(true);
    for (const bogus of ['Owner', 'superuser', '', 'constructor']) expect(isRole(bogus)).toBe(false);
  });
});

describe('role → scopes (SPEC §2)', () => {
  it('owner and admin hold every scope', () => {
    expect(sorted(roleScopes('owner'))).toEqual(sorted(CANONICAL));
    expect(sorted(roleScopes('admin'))).toEqual(sorted(CANONICAL));
  });

  it('member holds every :read scope plus readings:write, alarms:write, calibrations:write and offline_access', () => {
    expect(sorted(roleScopes('member'))).toEqual(
      sorted([...READS, 'readings:write', 'alarms:write', 'calibrations:write', 'offline_access']),
    );
  });

  it('viewer holds every :read scope and offline_access', () => {
    expect(sorted(roleScopes('viewer'))).toEqual(sorted([...READS, 'offline_access']));
  });

  it('every role holds offline_access, and every :read scope', () => {
    for (const role of ROLES) {
      expect(roleScopes(role).has('offline_access')).toBe(true);
      for (const read of CANONICAL.filter((s) => s.endsWith(':read'))) expect(roleScopes(role).has(read as Scope)).toBe(true);
    }
  });

  it('roles are ordered: viewer ⊆ member ⊆ admin = owner', () => {
    expect([...roleScopes('viewer')].every((s) => roleScopes('member').has(s))).toBe(true);
    expect([...roleScopes('member')].every((s) => roleScopes('admin').has(s))).toBe(true);
  });

  it('a bound user (client credentials, SmartSense) acts with read permissions only', () => {
    expect(sorted(boundUserScopes('owner'))).toEqual(sorted([...READS, 'offline_access']));
    expect(sorted(boundUserScopes('viewer'))).toEqual(sorted([...READS, 'offline_access']));
  });

  it('hasScopes checks coverage', () => {
    expect(hasScopes(roleScopes('viewer'), ['devices:read', 'readings:read'])).toBe(true);
    expect(hasScopes(roleScopes('viewer'), ['devices:read', 'devices:write'])).toBe(false);
    expect(hasScopes(roleScopes('viewer'), [])).toBe(true);
  });
});

describe('parseScopeParam', () => {
  it('splits on spaces, drops empties and duplicates, keeps order', () => {
    expect(parseScopeParam('devices:read  readings:read devices:read ')).toEqual(['devices:read', 'readings:read']);
    expect(parseScopeParam('')).toEqual([]);
    expect(parseScopeParam(undefined)).toEqual([]);
    expect(parseScopeParam(null)).toEqual([]);
  });
});

describe('clientCeiling', () => {
  it('expands aliases in the allowed list', () => {
    expect(sorted(clientCeiling(['*']))).toEqual(sorted(CANONICAL));
    expect(sorted(clientCeiling(['me']))).toEqual(sorted(CANONICAL));
    expect(sorted(clientCeiling(['basic']))).toEqual(['devices:read', 'readings:read']);
    expect(sorted(clientCeiling(['app']))).toEqual([]);
    expect(sorted(clientCeiling(['app', 'basic', 'alarms:read']))).toEqual(['alarms:read', 'devices:read', 'readings:read']);
  });
});

const user = (role: (typeof ROLES)[number], clientAllowed: ScopeToken[], requested: string[]): ScopeRequest => ({
  requested,
  clientAllowed,
  subjectScopes: roleScopes(role),
  userToken: true,
});
const app = (clientAllowed: ScopeToken[], requested: string[], subjectScopes?: ReadonlySet<Scope>): ScopeRequest => ({
  requested,
  clientAllowed,
  subjectScopes,
  userToken: false,
});

describe('decideScopes: effective = requested ∩ client allowed ∩ subject (SPEC §2)', () => {
  it('grants plain scopes the client and the user both hold, echoing them', () => {
    expect(
      granted(decideScopes(user('viewer', ['devices:read', 'readings:read', 'alarms:read'], ['devices:read', 'readings:read']))),
    ).toEqual({
      scopes: ['devices:read', 'readings:read'],
      granted: 'devices:read readings:read',
    });
  });

  it('`*` is every scope the subject may hold, within the client, and is echoed as asked', () => {
    expect(granted(decideScopes(user('viewer', ['*'], ['*'])))).toEqual({ scopes: sorted([...READS, 'offline_access']), granted: '*' });
    expect(granted(decideScopes(user('admin', ['*'], ['*'])))).toEqual({ scopes: sorted(CANONICAL), granted: '*' });
    // Within a narrower client, `*` is the client's list narrowed by the role.
    expect(granted(decideScopes(user('viewer', ['devices:read', 'devices:write'], ['*'])))).toEqual({
      scopes: ['devices:read'],
      granted: '*',
    });
    // An application token: everything the client may have.
    expect(granted(decideScopes(app(['devices:read', 'alarms:read'], ['*'])))).toEqual({
      scopes: ['alarms:read', 'devices:read'],
      granted: '*',
    });
  });

  it('`me` is the user role scopes, for user tokens only', () => {
    expect(granted(decideScopes(user('member', ['me'], ['me'])))).toEqual({ scopes: sorted(roleScopes('member')), granted: 'me' });
    expect(granted(decideScopes(user('viewer', ['me'], ['me'])))).toEqual({ scopes: sorted(roleScopes('viewer')), granted: 'me' });
    expect(refused(decideScopes(app(['me', 'devices:read'], ['me'])))).toMatch(/me/);
  });

  it('`app` is the client allowed scopes, for application tokens only', () => {
    expect(granted(decideScopes(app(['app', 'basic', 'devices:read', 'readings:read'], ['app'])))).toEqual({
      scopes: ['devices:read', 'readings:read'],
      granted: 'app',
    });
    expect(granted(decideScopes(app(['app', 'alarms:read', 'devices:write'], ['app'])))).toEqual({
      scopes: ['alarms:read', 'devices:write'],
      granted: 'app',
    });
    expect(refused(decideScopes(user('admin', ['app', 'devices:read'], ['app'])))).toMatch(/app/);
  });

  it('`basic` is devices:read readings:read', () => {
    expect(granted(decideScopes(app(['basic'], ['basic'])))).toEqual({ scopes: ['devices:read', 'readings:read'], granted: 'basic' });
    expect(granted(decideScopes(user('viewer', ['devices:read', 'readings:read'], ['basic'])))).toEqual({
      scopes: ['devices:read', 'readings:read'],
      granted: 'basic',
    });
    // A client that holds only one half of basic may not ask for it.
    refused(decideScopes(app(['devices:read'], ['basic'])));
  });

  it('aliases and plain scopes combine', () => {
    expect(granted(decideScopes(user('viewer', ['*'], ['basic', 'alarms:read', 'offline_access'])))).toEqual({
      scopes: ['alarms:read', 'devices:read', 'offline_access', 'readings:read'],
      granted: 'basic alarms:read offline_access',
    });
  });

  it('asking for a scope the client may not have is invalid_scope', () => {
    expect(refused(decideScopes(user('admin', ['devices:read'], ['devices:read', 'devices:write'])))).toMatch(/devices:write/);
    expect(refused(decideScopes(app(['readings:read'], ['sql_access:write'])))).toMatch(/sql_access:write/);
  });

  it('asking for an unknown scope is invalid_scope naming it', () => {
    expect(refused(decideScopes(user('admin', ['*'], ['devices:read', 'devices:destroy'])))).toMatch(/devices:destroy/);
    expect(refused(decideScopes(app(['*'], ['DEVICES:READ'])))).toMatch(/DEVICES:READ/);
  });

  it('a scope the user role lacks is narrowed away silently, not echoed', () => {
    expect(granted(decideScopes(user('viewer', ['*'], ['devices:read', 'devices:write', 'users:write'])))).toEqual({
      scopes: ['devices:read'],
      granted: 'devices:read',
    });
    expect(granted(decideScopes(user('member', ['*'], ['readings:write', 'alarms:write', 'devices:write', 'api_keys:write'])))).toEqual({
      scopes: ['alarms:write', 'readings:write'],
      granted: 'readings:write alarms:write',
    });
  });

  it('nothing left after narrowing is invalid_scope', () => {
    refused(decideScopes(user('viewer', ['*'], ['devices:write'])));
    refused(decideScopes(user('member', ['*'], ['sql_access:write', 'applications:write'])));
  });

  it('a bound user narrows an application token to their read permissions', () => {
    expect(granted(decideScopes(app(['*'], ['devices:read', 'devices:write'], boundUserScopes('admin'))))).toEqual({
      scopes: ['devices:read'],
      granted: 'devices:read',
    });
  });

  it('no scope parameter gives the client registered list (minus the alias that does not fit)', () => {
    expect(granted(decideScopes(user('viewer', ['devices:read', 'readings:read', 'alarms:read', 'offline_access'], [])))).toEqual({
      scopes: ['alarms:read', 'devices:read', 'offline_access', 'readings:read'],
      granted: 'devices:read readings:read alarms:read offline_access',
    });
    expect(granted(decideScopes(app(['app', 'basic', 'devices:read', 'readings:read'], [])))).toEqual({
      scopes: ['devices:read', 'readings:read'],
      granted: 'app basic devices:read readings:read',
    });
    expect(granted(decideScopes(user('member', ['me'], [])))).toEqual({ scopes: sorted(roleScopes('member')), granted: 'me' });
    // The default narrows by role like anything else.
    expect(granted(decideScopes(user('viewer', ['*'], [])))).toEqual({ scopes: sorted(roleScopes('viewer')), granted: '*' });
  });

  it('a client allowed only `me` gives an application token nothing (me needs a user)', () => {
    refused(decideScopes(app(['me'], [])));
    refused(decideScopes(app(['me'], ['devices:write'])));
    refused(decideScopes(app(['me'], ['*'])));
  });

  it('SPEC §7 clients: acme-m2m and acme-password behave as the seeds expect', () => {
    const m2m: ScopeToken[] = ['app', 'basic', 'devices:read', 'readings:read'];
    expect(granted(decideScopes(app(m2m, ['app'], boundUserScopes('viewer'))))).toEqual({
      scopes: ['devices:read', 'readings:read'],
      granted: 'app',
    });
    refused(decideScopes(app(m2m, ['alarms:read'])));
    expect(granted(decideScopes(user('admin', ['*'], ['*'])))).toEqual({ scopes: sorted(CANONICAL), granted: '*' });
  });
});

// ---- properties ----------------------------------------------------------------------------

const scopeToken = fc.constantFrom<string>(...SCOPES, ...SCOPE_ALIASES);
const anyToken = fc.oneof(
  scopeToken,
  scopeToken,
  fc.string({ maxLength: 20 }),
  fc.constantFrom('__proto__', 'constructor', '', ' ', 'devices:read devices:write'),
);
const role = fc.constantFrom(...ROLES);

describe('decideScopes properties', () => {
  it('never throws, and a grant is always ⊆ client ceiling ∩ subject scopes', () => {
    fc.assert(
      fc.property(
        fc.array(anyToken, { maxLength: 8 }),
        fc.array(anyToken, { maxLength: 8 }),
        fc.option(role, { nil: undefined }),
        fc.boolean(),
        fc.boolean(),
        (requested, allowedRaw, subjectRole, userToken, bound) => {
          const clientAllowed = allowedRaw as ScopeToken[];
          const subjectScopes = subjectRole === undefined ? undefined : bound ? boundUserScopes(subjectRole) : roleScopes(subjectRole);
          const decision = decideScopes({ requested, clientAllowed, subjectScopes, userToken });
          if (!decision.ok) {
            expect(decision.error).toBe('invalid_scope');
            expect(typeof decision.description).toBe('string');
            return;
          }
          // `me` is a user's role scopes: it opens nothing to an application acting for itself.
          const ceiling = clientCeiling(clientAllowed.filter(isScopeToken).filter((t) => userToken || t !== 'me'));
          expect(decision.scopes.size).toBeGreaterThan(0);
          for (const scope of decision.scopes) {
            expect(isScope(scope)).toBe(true);
            expect(ceiling.has(scope)).toBe(true);
            if (subjectScopes) expect(subjectScopes.has(scope)).toBe(true);
          }
          // What is echoed is drawn from what was asked for (or the client's list by default).
          const source = requested.length > 0 ? requested : clientAllowed;
          for (const token of parseScopeParam(decision.granted)) expect(source).toContain(token);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('an unknown token anywhere in the request is always invalid_scope', () => {
    fc.assert(
      fc.property(
        fc.array(scopeToken, { maxLength: 5 }),
        fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !isScopeToken(s)),
        fc.array(scopeToken, { maxLength: 5 }),
        (before, unknown, after) => {
          const decision = decideScopes({
            requested: [...before, unknown, ...after],
            clientAllowed: ['*'],
            subjectScopes: roleScopes('owner'),
            userToken: true,
          });
          expect(decision.ok).toBe(false);
        },
      ),
    );
  });

  it('a user token never carries a scope outside the role', () => {
    fc.assert(
      fc.property(
        fc.array(scopeToken, { maxLength: 8 }),
        fc.array(scopeToken, { minLength: 1, maxLength: 8 }),
        role,
        (requested, allowed, r) => {
          const decision = decideScopes({
            requested,
            clientAllowed: allowed as ScopeToken[],
            subjectScopes: roleScopes(r),
            userToken: true,
          });
          if (decision.ok) expect([...decision.scopes].every((s) => roleScopes(r).has(s))).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('requesting exactly what a plain-scope client allows, as an owner, grants exactly that', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.constantFrom(...SCOPES), { minLength: 1 }), (allowed) => {
        expect(granted(decideScopes(user('owner', allowed, allowed))).scopes).toEqual(sorted(allowed));
      }),
    );
  });
});
