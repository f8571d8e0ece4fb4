import { SCOPES, clientCeiling, isScope, isScopeAlias, isScopeToken } from '../identity/scopes.js';
import { GRANT_TYPES, TOKEN_FORMATS, USER_AUTH_MODES, isGrantType } from './grant-types.js';

/**
 * The rules of a client registration, in one place for the three ways a client is registered:
 * the provisioning file (provisioning/validate.ts), the CLI (`sensorcloud client create`) and
 * `/v1/applications` (applications/applications.service.ts). Each caller words the issues its own
 * way (a file path and line, a command-line flag, a JSON pointer into the request body).
 *
 * Two policies:
 * - `operator` (the file and the CLI, run by whoever runs the server): every grant type and scope
 *   alias, any absolute redirect URI without a fragment.
 * - `organization` (an organization's admins through the API): plain scopes only, no password grant
 *   (RFC 9700 §2.4), redirect URIs over https or plain http on a loopback host only (RFC 8252 §7.3),
 *   an https privacy policy.
 */

export type ClientPolicy = 'operator' | 'organization';

/** A registration as written (snake_case like the file and the API), before anything is stored. */
export interface ClientDraft {
  client_id?: string | undefined;
  client_secret?: string | undefined;
  public?: boolean | undefined;
  redirect_uris?: readonly string[] | undefined;
  grant_types: readonly string[];
  scopes: readonly string[];
  token_format?: string | undefined;
  privacy_policy_url?: string | null | undefined;
  bound_user?: string | null | undefined;
  user_auth?: string | undefined;
}

export interface ClientIssue {
  /** The field at fault, then indices into it (`['redirect_uris', 0]`). */
  path: (string | number)[];
  message: string;
}

/** Grant types an organization may register through the API (no password grant). */
export const ORGANIZATION_GRANT_TYPES = GRANT_TYPES.filter((grant) => grant !== 'password');

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** RFC 6749 §3.1.2: absolute, no fragment; never a scheme that runs code. */
export function redirectUriProblem(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return `"${uri}" is not an absolute URI`;
  }
  if (url.hash || uri.includes('#')) return 'must not contain a fragment';
  if (url.protocol === 'javascript:' || url.protocol === 'data:') return `the ${url.protocol} scheme is not allowed`;
  return undefined;
}

/** What an organization's admins may register: https, or http on a loopback host (a native app's local listener). */
export function organizationRedirectUriProblem(uri: string): string | undefined {
  const problem = redirectUriProblem(uri);
  if (problem) return problem;
  const url = new URL(uri);
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)) return undefined;
  if (url.protocol === 'http:') return 'must use https (plain http only on a loopback host: 127.0.0.1, [::1] or localhost)';
  return `the ${url.protocol} scheme is not allowed: use https (or http on a loopback host)`;
}

function privacyPolicyProblem(url: string, policy: ClientPolicy): string | undefined {
  if (policy === 'operator') return /^https?:\/\//.test(url) ? undefined : 'must be an http(s) URL';
  try {
    if (new URL(url).protocol === 'https:') return undefined;
  } catch {
    // not a URL: as below
  }
  return 'must be an https URL';
}

function grantIssues(draft: ClientDraft, policy: ClientPolicy): ClientIssue[] {
  const issues: ClientIssue[] = [];
  if (draft.grant_types.length === 0) issues.push({ path: ['grant_types'], message: 'must name at least one grant type' });
  draft.grant_types.forEach((grant, g) => {
    if (!isGrantType(grant))
      issues.push({ path: ['grant_types', g], message: `unknown grant type "${grant}"; expected one of ${GRANT_TYPES.join(', ')}` });
    else if (draft.public && (grant === 'client_credentials' || grant === 'password'))
      issues.push({ path: ['grant_types', g], message: `a public client cannot use the ${grant} grant` });
    else if (policy === 'organization' && grant === 'password')
      issues.push({
        path: ['grant_types', g],
        message: 'the password grant is not offered to applications (RFC 9700 §2.4); use authorization_code with PKCE',
      });
  });
  const issuesRefresh = ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code', 'password'];
  if (policy === 'organization' && draft.grant_types.includes('refresh_token') && !draft.grant_types.some((g) => issuesRefresh.includes(g)))
    issues.push({
      path: ['grant_types'],
      message: 'refresh_token needs a grant that issues refresh tokens (authorization_code or the device code grant)',
    });
  return issues;
}

function scopeIssues(draft: ClientDraft, policy: ClientPolicy): ClientIssue[] {
  const issues: ClientIssue[] = [];
  if (draft.scopes.length === 0) issues.push({ path: ['scopes'], message: 'must name at least one scope' });
  draft.scopes.forEach((scope, s) => {
    if (policy === 'organization' && isScopeAlias(scope))
      issues.push({ path: ['scopes', s], message: `"${scope}" is an alias; list the scopes themselves (${SCOPES.join(' ')})` });
    else if (!(policy === 'organization' ? isScope(scope) : isScopeToken(scope)))
      issues.push({ path: ['scopes', s], message: `unknown scope "${scope}"` });
  });
  if (
    draft.scopes.length > 0 &&
    draft.scopes.every(isScopeToken) &&
    clientCeiling(draft.scopes.filter(isScopeToken)).size === 0 &&
    !draft.scopes.includes('app')
  ) {
    issues.push({ path: ['scopes'], message: 'grants no scope' });
  }
  return issues;
}

/** Everything wrong with a registration under `policy`; empty when it may be stored. */
export function clientIssues(draft: ClientDraft, policy: ClientPolicy): ClientIssue[] {
  const issues: ClientIssue[] = [];
  if (draft.client_id !== undefined && !/^[\x21-\x7e]{1,200}$/.test(draft.client_id))
    issues.push({ path: ['client_id'], message: 'must be 1–200 visible ASCII characters' });
  if (draft.public && draft.client_secret) issues.push({ path: ['client_secret'], message: 'a public client has no secret' });
  issues.push(...grantIssues(draft, policy), ...scopeIssues(draft, policy));
  const redirectUris = draft.redirect_uris ?? [];
  if (draft.grant_types.includes('authorization_code') && redirectUris.length === 0)
    issues.push({ path: ['redirect_uris'], message: 'the authorization_code grant needs at least one redirect URI' });
  const uriProblem = policy === 'organization' ? organizationRedirectUriProblem : redirectUriProblem;
  redirectUris.forEach((uri, r) => {
    const problem = uriProblem(uri);
    if (problem) issues.push({ path: ['redirect_uris', r], message: problem });
  });
  const privacy = draft.privacy_policy_url ? privacyPolicyProblem(draft.privacy_policy_url, policy) : undefined;
  if (privacy) issues.push({ path: ['privacy_policy_url'], message: privacy });
  if (draft.user_auth && !(USER_AUTH_MODES as readonly string[]).includes(draft.user_auth))
    issues.push({ path: ['user_auth'], message: `unknown user_auth "${draft.user_auth}"; expected one of ${USER_AUTH_MODES.join(', ')}` });
  if (draft.token_format && !(TOKEN_FORMATS as readonly string[]).includes(draft.token_format))
    issues.push({
      path: ['token_format'],
      message: `unknown token_format "${draft.token_format}"; expected one of ${TOKEN_FORMATS.join(', ')}`,
    });
  if (draft.bound_user && !draft.grant_types.includes('client_credentials'))
    issues.push({ path: ['bound_user'], message: 'only applies to clients with the client_credentials grant' });
  return issues;
}
