import type { FastifyRequest } from 'fastify';
import { HttpProblem } from '../http/problem.js';
import { sha256 } from '../security/tokens.js';
import type { Principal } from './principal.js';

/**
 * The one bearer check every protected route uses, for access tokens, API keys and device tokens
 * alike. A credential kind registers a resolver for its prefix; resolved principals are cached
 * in-process for at most CACHE_TTL_MS (or until they expire), which bounds how long another node
 * may keep honouring a credential revoked elsewhere. Revocation on this node evicts at once.
 */

export interface CredentialResolver {
  /** The prefix the credential starts with (`sc_at_`, `sk_live_`, `sc_dev_`, `eyJ` for JWTs). */
  prefix: string;
  /** Looks the credential up by its hash; null when unknown, expired or revoked. */
  resolve(token: string, hash: string): Promise<Principal | null>;
}

export const CACHE_TTL_MS = 1000;
const CACHE_MAX_ENTRIES = 50_000;

interface CacheEntry {
  principal: Principal;
  validUntil: number;
}

export const REALM = 'sensorcloud';

function challenge(params: Record<string, string> = {}): string {
  const attrs = Object.entries({ realm: REALM, ...params }).map(([k, v]) => `${k}="${v.replace(/["\\]/g, '')}"`);
  return `Bearer ${attrs.join(', ')}`;
}

/** RFC 6750 §3: 401 with a challenge (and `invalid_token` when a credential was presented). */
export function unauthorized(error?: 'invalid_token', description?: string): HttpProblem {
  const params: Record<string, string> = error ? { error, ...(description && { error_description: description }) } : {};
  return new HttpProblem({
    status: 401,
    detail: description ?? 'Authentication is required: send "Authorization: Bearer <token>".',
    headers: { 'www-authenticate': challenge(params) },
  });
}

export function invalidRequest(description: string): HttpProblem {
  return new HttpProblem({ status: 400, detail: description, headers: { 'www-authenticate': challenge({ error: 'invalid_request', error_description: description }) } });
}

export function insufficientScope(needed: readonly string[]): HttpProblem {
  const scope = needed.join(' ');
  return new HttpProblem({
    status: 403,
    detail: `This request needs the scope ${scope}.`,
    headers: { 'www-authenticate': challenge({ error: 'insufficient_scope', error_description: `requires ${scope}`, scope }) },
  });
}

/** Extracts the token of an `Authorization: Bearer` header; undefined when there is none. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  if (!match?.[1]) {
    if (/^Bearer\b/i.test(header)) throw invalidRequest('The Authorization header is not a valid Bearer credential (RFC 6750 §2.1).');
    return undefined;
  }
  return match[1];
}

export class BearerAuthenticator {
  private readonly resolvers: CredentialResolver[] = [];
  private readonly cache = new Map<string, CacheEntry>();

  constructor(private readonly now: () => number = Date.now) {}

  register(resolver: CredentialResolver): void {
    this.resolvers.push(resolver);
  }

  /** The principal behind a raw credential, or null; no HTTP concerns. */
  async resolve(token: string): Promise<Principal | null> {
    const hash = sha256(token);
    const now = this.now();
    const cached = this.cache.get(hash);
    if (cached && cached.validUntil > now) return cached.principal;
    if (cached) this.cache.delete(hash);
    const resolver = this.resolvers.find((r) => token.startsWith(r.prefix));
    const principal = resolver ? await resolver.resolve(token, hash) : null;
    if (principal) {
      const expiry = principal.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY;
      if (expiry <= now) return null;
      if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(hash, { principal, validUntil: Math.min(now + CACHE_TTL_MS, expiry) });
    }
    return principal;
  }

  /** Authenticates a request or throws the RFC 6750 problem. */
  async authenticate(request: FastifyRequest): Promise<Principal> {
    const token = bearerToken(request);
    if (token === undefined) throw unauthorized();
    const principal = await this.resolve(token);
    if (!principal) throw unauthorized('invalid_token', 'The access token is invalid, expired or revoked.');
    return principal;
  }

  /** Forget cached principals of a revoked credential or family, on this node, immediately. */
  evict(match: { credentialHash?: string; revocationGroup?: string }): void {
    for (const [hash, entry] of this.cache) {
      if (hash === match.credentialHash || entry.principal.revocationGroup === match.revocationGroup) this.cache.delete(hash);
    }
  }
}
