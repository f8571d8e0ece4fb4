import { parseScopeParam, type ScopeToken } from '../../identity/scopes.js';
import type { Db } from '../../storage/database.js';
import { findClientByClientId } from '../clients.repo.js';
import type { OAuthClient } from '../oauth.schema.js';
import { checkClientScopes } from './consent.js';

/**
 * Validation of an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3), in the order RFC 6749
 * §4.1.2.1 demands: until the client and its redirect URI are established, every problem is shown
 * to the user on a page (never sent to an unverified URI); after that, problems go back to the
 * client as `error` parameters on its redirect URI, with `state` exactly as received.
 */

/** The parameters carried from the first GET through the login and consent forms. */
export const AUTHORIZE_PARAMS = [
  'response_type',
  'client_id',
  'redirect_uri',
  'scope',
  'state',
  'code_challenge',
  'code_challenge_method',
  'prompt',
  'response_mode',
] as const;
type AuthorizeParam = (typeof AUTHORIZE_PARAMS)[number];

export type AuthorizeErrorCode =
  | 'invalid_request'
  | 'unauthorized_client'
  | 'access_denied'
  | 'unsupported_response_type'
  | 'invalid_scope'
  | 'server_error'
  | 'temporarily_unavailable'
  | 'login_required'
  | 'consent_required';

export interface AuthorizationRequest {
  client: OAuthClient;
  redirectUri: string;
  state: string | undefined;
  /** The scope parameter split (empty: the client's registered default). */
  requested: string[];
  codeChallenge: string | undefined;
  codeChallengeMethod: 'S256' | undefined;
  prompt: ReadonlySet<string>;
  /** The request's own parameters, to carry through forms as hidden inputs. */
  params: Partial<Record<AuthorizeParam, string>>;
}

export type AuthorizeValidation =
  | { kind: 'ok'; request: AuthorizationRequest }
  | { kind: 'page'; status: number; title: string; message: string }
  | { kind: 'redirect'; redirectUri: string; error: AuthorizeErrorCode; description: string; state: string | undefined };

const DUPLICATE = Symbol('duplicate');

/** One parameter's value; an empty value counts as absent (RFC 6749 §3.1), repetition is an error. */
function single(params: Record<string, unknown>, name: string): string | undefined | typeof DUPLICATE {
  const value = params[name];
  if (Array.isArray(value)) {
    if (value.length > 1) return DUPLICATE;
    return typeof value[0] === 'string' && value[0] !== '' ? value[0] : undefined;
  }
  if (typeof value === 'string') return value === '' ? undefined : value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

const CODE_CHALLENGE = /^[A-Za-z0-9\-._~]{43,128}$/;
const MAX_STATE_LENGTH = 4096;
const MAX_PARAM_LENGTH = 2048;

export async function validateAuthorizationRequest(db: Db, input: Record<string, unknown>): Promise<AuthorizeValidation> {
  const page = (status: number, title: string, message: string): AuthorizeValidation => ({ kind: 'page', status, title, message });

  const clientId = single(input, 'client_id');
  if (clientId === DUPLICATE) return page(400, 'Invalid request', 'The client_id parameter was sent more than once.');
  if (clientId === undefined) return page(400, 'Invalid request', 'The request does not name an application (client_id is missing).');
  const client = clientId.length <= 200 ? await findClientByClientId(db, clientId) : undefined;
  if (!client) return page(400, 'Unknown application', 'The application that sent you here is not registered with sensorcloud.');
  if (!client.enabled)
    return page(400, 'Application disabled', `${client.name} has been disabled by its organization, so it cannot ask you to sign in.`);

  const givenRedirect = single(input, 'redirect_uri');
  if (givenRedirect === DUPLICATE) return page(400, 'Invalid request', 'The redirect_uri parameter was sent more than once.');
  if (client.redirect_uris.length === 0) {
    return page(
      400,
      'Application not set up for sign-in',
      `${client.name} has no registered redirect URI, so it cannot ask you to sign in.`,
    );
  }
  let redirectUri: string;
  if (givenRedirect === undefined) {
    // RFC 6749 §3.1.2.3: optional when exactly one is registered.
    if (client.redirect_uris.length !== 1)
      return page(400, 'Invalid request', 'The request does not say where to return (redirect_uri is missing).');
    redirectUri = client.redirect_uris[0]!;
  } else if (client.redirect_uris.includes(givenRedirect)) {
    redirectUri = givenRedirect; // exact, character-for-character match (RFC 9700 §4.1.3)
  } else {
    return page(
      400,
      'Invalid redirect URI',
      `The address ${client.name} asked to return you to is not one it registered, so you were not sent there.`,
    );
  }

  // From here on, errors are the client's business: redirect them.
  const rawState = single(input, 'state');
  // State travels back in the Location header: one that long would make the redirect itself fail.
  if (typeof rawState === 'string' && rawState.length > MAX_STATE_LENGTH)
    return page(400, 'Invalid request', `The state parameter is longer than ${MAX_STATE_LENGTH} characters.`);
  const state = rawState === DUPLICATE ? undefined : rawState;
  const fail = (error: AuthorizeErrorCode, description: string): AuthorizeValidation => ({
    kind: 'redirect',
    redirectUri,
    error,
    description,
    state,
  });

  const params: Partial<Record<AuthorizeParam, string>> = {};
  for (const name of AUTHORIZE_PARAMS) {
    const value = single(input, name);
    if (value === DUPLICATE) return fail('invalid_request', `the ${name} parameter was sent more than once`);
    if (value !== undefined && value.length > MAX_PARAM_LENGTH && name !== 'state')
      return fail('invalid_request', `the ${name} parameter is longer than ${MAX_PARAM_LENGTH} characters`);
    if (value !== undefined) params[name] = value;
  }
  params.redirect_uri = redirectUri;

  const responseType = params.response_type;
  if (responseType === undefined) return fail('invalid_request', 'response_type is required');
  if (responseType !== 'code') return fail('unsupported_response_type', 'only response_type=code is supported');
  if (params.response_mode !== undefined && params.response_mode !== 'query')
    return fail('invalid_request', 'only response_mode=query is supported');
  if (!client.grant_types.includes('authorization_code'))
    return fail('unauthorized_client', 'this client may not use the authorization code grant');

  const challenge = params.code_challenge;
  const method = params.code_challenge_method;
  if (method !== undefined && method !== 'S256')
    return fail('invalid_request', 'code_challenge_method must be S256 (plain is not supported)');
  if (challenge === undefined && method !== undefined)
    return fail('invalid_request', 'code_challenge_method was sent without code_challenge');
  if (challenge !== undefined) {
    // Without a method RFC 7636 means "plain", which is not supported.
    if (method === undefined) return fail('invalid_request', 'code_challenge_method=S256 is required with code_challenge');
    if (!CODE_CHALLENGE.test(challenge)) return fail('invalid_request', 'code_challenge must be 43-128 characters of [A-Za-z0-9-._~]');
  } else if (client.public) {
    return fail('invalid_request', 'PKCE is required for public clients: send code_challenge and code_challenge_method=S256');
  }

  const requested = parseScopeParam(params.scope);
  const scopeCheck = checkClientScopes(client.scopes as ScopeToken[], requested);
  if (!scopeCheck.ok) return fail('invalid_scope', scopeCheck.description);

  const prompt = new Set(parseScopeParam(params.prompt));
  if (prompt.has('none') && prompt.size > 1) return fail('invalid_request', 'prompt=none cannot be combined with other values');

  return {
    kind: 'ok',
    request: {
      client,
      redirectUri,
      state,
      requested,
      codeChallenge: challenge,
      codeChallengeMethod: challenge ? 'S256' : undefined,
      prompt,
      params,
    },
  };
}

/**
 * The client's redirect URI with response parameters appended (RFC 6749 §4.1.2), keeping its own
 * query component. Built by string so the registered URI is returned byte for byte.
 */
export function redirectWith(redirectUri: string, params: Record<string, string | undefined>): string {
  const query = Object.entries(params)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
  const separator = redirectUri.includes('?') ? (redirectUri.endsWith('?') || redirectUri.endsWith('&') ? '' : '&') : '?';
  return redirectUri + separator + query;
}
