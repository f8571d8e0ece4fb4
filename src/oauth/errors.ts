import type { FastifyReply } from 'fastify';

/**
 * An error of the OAuth endpoints, rendered as RFC 6749 §5.2 JSON (`error`,
 * `error_description`) — never as problem+json. `headers` carries `WWW-Authenticate` for client
 * authentication failures and `Retry-After` for throttling.
 */
export class OAuthError extends Error {
  constructor(
    readonly error: string,
    readonly description: string,
    readonly status = 400,
    readonly headers: Record<string, string> = {},
    /** Extra members of the error body (e.g. `interval` with slow_down). */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(description);
    this.name = 'OAuthError';
  }
}

export const invalidRequest = (description: string) => new OAuthError('invalid_request', description);
export const invalidGrant = (description: string) => new OAuthError('invalid_grant', description);
export const invalidScope = (description: string) => new OAuthError('invalid_scope', description);
export const unauthorizedClient = (description: string) => new OAuthError('unauthorized_client', description);
export const unsupportedGrantType = (description: string) => new OAuthError('unsupported_grant_type', description);

export const BASIC_REALM = 'sensorcloud';

/**
 * 401 invalid_client. RFC 6749 §5.2 requires the Basic challenge when the client tried HTTP Basic;
 * HTTP (RFC 9110 §15.5.2) requires a challenge on every 401, so it is always sent.
 */
export function invalidClient(description: string, _usedBasic?: boolean): OAuthError {
  return new OAuthError('invalid_client', description, 401, { 'www-authenticate': `Basic realm="${BASIC_REALM}", charset="UTF-8"` });
}

export function tooManyRequests(
  description: string,
  retryAfterSeconds: number,
  limit?: { max: number; windowSeconds: number },
): OAuthError {
  const headers: Record<string, string> = { 'retry-after': String(retryAfterSeconds) };
  if (limit) Object.assign(headers, rateLimitHeaders(limit.max, 0, retryAfterSeconds, limit.windowSeconds));
  return new OAuthError('rate_limited', description, 429, headers);
}

/**
 * RateLimit header fields: the fields of draft-ietf-httpapi-ratelimit-headers as
 * @fastify/rate-limit names them (`RateLimit-Limit/-Remaining/-Reset`) and the structured form of
 * the later drafts (`RateLimit`, `RateLimit-Policy`).
 */
export function rateLimitHeaders(max: number, remaining: number, resetSeconds: number, windowSeconds: number): Record<string, string> {
  return {
    'ratelimit-limit': String(max),
    'ratelimit-remaining': String(remaining),
    'ratelimit-reset': String(resetSeconds),
    ratelimit: `limit=${max}, remaining=${remaining}, reset=${resetSeconds}`,
    'ratelimit-policy': `${max};w=${windowSeconds}`,
  };
}

/** OAuth responses carrying tokens or token metadata must not be cached (RFC 6749 §5.1). */
export function noStore(reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
}

export function sendOAuthError(reply: FastifyReply, error: OAuthError): FastifyReply {
  return noStore(reply)
    .code(error.status)
    .headers(error.headers)
    .type('application/json; charset=utf-8')
    .send({ error: error.error, error_description: error.description, ...error.extra });
}
