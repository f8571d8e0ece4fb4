import { isSlug, passwordProblem } from '../identity/accounts.js';
import { ROLES, isRole, isScope, roleScopes } from '../identity/scopes.js';
import { clientIssues } from '../oauth/client-rules.js';
import { normalizeEmail } from '../identity/users.repo.js';
import { DOMAIN_PATTERN, issuerProblem } from '../external-signin/identity-provider-rules.js';
import type { ClientSpec, OrganizationSpec, ProvisioningFile } from './file-schema.js';
import { type PathSegment, formatPath } from './path.js';

const PERSON_FIELDS = ['password', 'name', 'external_authentication_token'] as const;

interface Issue {
  path: PathSegment[];
  message: string;
}

/** Meaning checks across the whole file: roles, scopes, grant types and every cross-reference. */
export function semanticIssues(file: ProvisioningFile): Issue[] {
  const issues: Issue[] = [];
  const seen = {
    slugs: new Set<string>(),
    clientIds: new Set<string>(),
    apiKeys: new Set<string>(),
    deviceTokens: new Set<string>(),
    solutionKeys: new Set<string>(),
  };
  // A user is one person across organizations (one row, one password): every organization that
  // lists them must agree on what it gives, or each application would overwrite the other's.
  const people = new Map<string, Partial<Record<(typeof PERSON_FIELDS)[number], { value: string; at: PathSegment[] }>>>();
  const externalTokens = new Map<string, string>();
  const unique = (set: Set<string>, value: string, path: PathSegment[], what: string) => {
    if (set.has(value)) issues.push({ path, message: `duplicate ${what} "${value}"` });
    set.add(value);
  };

  file.organizations.forEach((org, o) => {
    const at = (...rest: PathSegment[]): PathSegment[] => ['organizations', o, ...rest];
    if (!isSlug(org.slug))
      issues.push({ path: at('slug'), message: `"${org.slug}" is not a valid slug (lower-case letters, digits, dashes)` });
    unique(seen.slugs, org.slug, at('slug'), 'organization slug');
    if (org.solution_key) unique(seen.solutionKeys, org.solution_key, at('solution_key'), 'solution key');

    const roles = new Map<string, string>();
    org.users?.forEach((user, u) => {
      const email = normalizeEmail(user.email);
      if (!/^[^\s@]+@[^\s@]+$/.test(email))
        issues.push({ path: at('users', u, 'email'), message: `"${user.email}" is not an email address` });
      if (roles.has(email)) issues.push({ path: at('users', u, 'email'), message: `duplicate email "${user.email}"` });
      roles.set(email, user.role);
      if (!isRole(user.role))
        issues.push({ path: at('users', u, 'role'), message: `unknown role "${user.role}"; expected one of ${ROLES.join(', ')}` });
      const weak = user.password === undefined ? undefined : passwordProblem(user.password);
      if (weak) issues.push({ path: at('users', u, 'password'), message: weak });
      const token = user.external_authentication_token;
      if (token) {
        const owner = externalTokens.get(token);
        if (owner !== undefined && owner !== email)
          issues.push({
            path: at('users', u, 'external_authentication_token'),
            message: `duplicate external_authentication_token (also given to "${owner}")`,
          });
        externalTokens.set(token, email);
      }
      const person = people.get(email) ?? {};
      for (const field of PERSON_FIELDS) {
        const value = user[field];
        if (value === undefined) continue;
        const first = person[field];
        if (!first) person[field] = { value, at: at('users', u) };
        else if (first.value !== value && first.at[1] !== o) {
          issues.push({
            path: at('users', u, field),
            message: `"${user.email}" is also listed at ${formatPath(first.at)} with a different ${field.replaceAll('_', ' ')}; a person has one in every organization`,
          });
        }
      }
      people.set(email, person);
    });
    const userRef = (email: string, path: PathSegment[]) => {
      if (!roles.has(normalizeEmail(email)))
        issues.push({ path, message: `refers to user "${email}", who is not in this organization's users` });
    };

    for (const [g, group] of (org.groups ?? []).entries()) {
      for (const [i, email] of (group.users ?? []).entries()) userRef(email, at('groups', g, 'users', i));
    }
    org.clients?.forEach((client, c) => {
      unique(seen.clientIds, client.client_id, at('clients', c, 'client_id'), 'client_id');
      issues.push(...provisionedClientIssues(client, (...rest) => at('clients', c, ...rest)));
      if (client.bound_user) userRef(client.bound_user, at('clients', c, 'bound_user'));
    });
    org.api_keys?.forEach((key, k) => {
      if (!/^sk_live_[A-Za-z0-9_-]{24,}$/.test(key.key))
        issues.push({ path: at('api_keys', k, 'key'), message: 'must be "sk_live_" followed by at least 24 letters, digits, "_" or "-"' });
      unique(seen.apiKeys, key.key, at('api_keys', k, 'key'), 'API key');
      if (key.expires_at !== undefined && Number.isNaN(Date.parse(key.expires_at)))
        issues.push({ path: at('api_keys', k, 'expires_at'), message: 'must be an RFC 3339 date-time' });
      userRef(key.created_by, at('api_keys', k, 'created_by'));
      const creatorRole = roles.get(normalizeEmail(key.created_by));
      key.scopes.forEach((scope, s) => {
        if (!isScope(scope)) issues.push({ path: at('api_keys', k, 'scopes', s), message: `unknown scope "${scope}"` });
        else if (creatorRole && isRole(creatorRole) && !roleScopes(creatorRole).has(scope)) {
          issues.push({
            path: at('api_keys', k, 'scopes', s),
            message: `scope "${scope}" is not held by the creator's role (${creatorRole})`,
          });
        }
      });
    });
    issues.push(...inventoryIssues(org, at, seen.deviceTokens));
    const providerNames = new Set<string>();
    org.identity_providers?.forEach((provider, p) => {
      if (providerNames.has(provider.name))
        issues.push({ path: at('identity_providers', p, 'name'), message: `"${provider.name}" is listed twice` });
      providerNames.add(provider.name);
      const problem = issuerProblem(provider.issuer);
      if (problem) issues.push({ path: at('identity_providers', p, 'issuer'), message: problem });
      provider.allowed_email_domains?.forEach((domain, d) => {
        if (!new RegExp(DOMAIN_PATTERN).test(domain))
          issues.push({ path: at('identity_providers', p, 'allowed_email_domains', d), message: 'must be a domain name (example.com)' });
      });
    });
  });
  return issues;
}

/** The client rules of the operator policy (oauth/client-rules.ts), plus what only a file must say: the secret. */
function provisionedClientIssues(client: ClientSpec, at: (...rest: PathSegment[]) => PathSegment[]): Issue[] {
  const issues = clientIssues(client, 'operator').map((issue) => ({ path: at(...issue.path), message: issue.message }));
  if (!client.public && !client.client_secret)
    issues.push({ path: at('client_secret'), message: 'is required for a confidential client (or set public: true)' });
  return issues;
}

function inventoryIssues(org: OrganizationSpec, at: (...rest: PathSegment[]) => PathSegment[], deviceTokens: Set<string>): Issue[] {
  const issues: Issue[] = [];
  const locations = new Set<string>();
  org.locations?.forEach((location, l) => {
    if (!isSlug(location.slug)) issues.push({ path: at('locations', l, 'slug'), message: `"${location.slug}" is not a valid slug` });
    if (locations.has(location.slug))
      issues.push({ path: at('locations', l, 'slug'), message: `duplicate location slug "${location.slug}"` });
    locations.add(location.slug);
  });
  const serials = new Set<string>();
  org.devices?.forEach((device, d) => {
    if (serials.has(device.serial))
      issues.push({ path: at('devices', d, 'serial'), message: `duplicate device serial "${device.serial}"` });
    serials.add(device.serial);
    if (device.location && !locations.has(device.location))
      issues.push({
        path: at('devices', d, 'location'),
        message: `refers to location "${device.location}", which is not in this organization's locations`,
      });
    if (device.token !== undefined) {
      if (!/^sc_dev_[A-Za-z0-9_-]{24,}$/.test(device.token))
        issues.push({ path: at('devices', d, 'token'), message: 'must be "sc_dev_" followed by at least 24 letters, digits, "_" or "-"' });
      if (deviceTokens.has(device.token)) issues.push({ path: at('devices', d, 'token'), message: 'duplicate device token' });
      deviceTokens.add(device.token);
    }
    const keys = new Set<string>();
    device.sensors?.forEach((sensor, s) => {
      if (keys.has(sensor.key))
        issues.push({ path: at('devices', d, 'sensors', s, 'key'), message: `duplicate sensor key "${sensor.key}"` });
      keys.add(sensor.key);
    });
  });
  return issues;
}
