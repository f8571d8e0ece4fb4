import type { FastifyRequest } from 'fastify';
import type { AbuseGuard, Refusal } from '../abuse/guard.js';
import { sourceOf } from '../abuse/source.js';
import { HttpProblem } from '../http/problem.js';
import { sha256 } from '../security/tokens.js';
import type { Db } from '../storage/database.js';
import { announce } from '../storage/invalidations.js';
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
  /** resolve() reads the hash alone: the credential can be checked again from its digest (resolveDigest). */
  byHash?: boolean;
}

export const CACHE_TTL_MS = 1000;

export interface CredentialMatch {
  credentialHash?: string;
  revocationGroup?: string;
  userId?: string;
  /** Every access token issued to this OAuth client (its primary key): the client was disabled or deleted. */
  clientPk?: string;
}
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
  return new HttpProblem({
    status: 400,
    detail: description,
    headers: { 'www-authenticate': challenge({ error: 'invalid_request', error_description: description }) },
  });
}

export function insufficientScope(needed: readonly string[]): HttpProblem {
  const scope = needed.join(' ');
  return new HttpProblem({
    status: 403,
    detail: `This request needs the scope ${scope}.`,
    headers: { 'www-authenticate': challenge({ error: 'insufficient_scope', error_description: `requires ${scope}`, scope }) },
  });
}

function tooManyFailures(refusal: Refusal): HttpProblem {
  const { freeFailures, forgetAfterMs, name } = refusal.policy;
  return new HttpProblem({
    status: 429,
    detail: `Too many invalid credentials from this address; retry in ${refusal.retryAfterSeconds} s.`,
    headers: {
      'retry-after': String(refusal.retryAfterSeconds),
      'ratelimit-policy': `"${name}";q=${freeFailures};w=${Math.ceil(forgetAfterMs / 1000)}`,
      ratelimit: `"${name}";r=0;t=${refusal.retryAfterSeconds}`,
    },
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

/** Credentials verified on this node within this long are not held back by their address's failure budget. */
const KNOWN_GOOD_MS = 60 * 60_000;

export class BearerAuthenticator {
  private readonly resolvers: CredentialResolver[] = [];
  private readonly cache = new Map<string, CacheEntry>();
  /** Credential hash → when this node last resolved it (bounded like the cache). */
  private readonly knownGood = new Map<string, number>();

  constructor(
    private readonly abuse?: AbuseGuard,
    private readonly now: () => number = Date.now,
  ) {}

  register(resolver: CredentialResolver): void {
    this.resolvers.push(resolver);
  }

  /** The principal behind a raw credential, or null; no HTTP concerns. */
  resolve(token: string): Promise<Principal | null> {
    return this.resolveHashed(token, sha256(token));
  }

  /**
   * The principal behind a credential known only by its digest (a long-lived connection keeps no
   * plaintext), through the cache and the resolver of `prefix` when that resolver looks credentials
   * up by hash alone; null otherwise.
   */
  resolveDigest(prefix: string, hash: string): Promise<Principal | null> {
    const resolver = this.resolvers.find((r) => r.prefix === prefix);
    return resolver?.byHash ? this.resolveHashed(prefix, hash) : Promise.resolve(null);
  }

  private async resolveHashed(token: string, hash: string): Promise<Principal | null> {
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
      this.knownGood.delete(hash);
      if (this.knownGood.size >= CACHE_MAX_ENTRIES) this.knownGood.delete(this.knownGood.keys().next().value as string);
      this.knownGood.set(hash, now);
    }
    return principal;
  }

  /**
   * Authenticates a request or throws the RFC 6750 problem. Failed credentials count against the
   * caller's address (abuse/guard.ts, `bearer` door); once its budget is spent, credentials this
   * node has not verified within the last hour are refused with 429 before they are looked up
   * (from this node's view of the block: no round trip on the hot path), while known ones go on
   * working.
   */
  async authenticate(request: FastifyRequest): Promise<Principal> {
    const token = bearerToken(request);
    if (token === undefined) throw unauthorized();
    const checked = await this.check(token, request.ip);
    if ('refused' in checked) throw tooManyFailures(checked.refused);
    if ('invalid' in checked) throw unauthorized('invalid_token', 'The access token is invalid, expired or revoked.');
    return checked.principal;
  }

  /**
   * The same check for a credential presented any other way (an MQTT password): from the cache,
   * else refused while `ip`'s budget is spent (unless known here), else resolved, a failure
   * counted against `ip`. The transport words the answer.
   */
  async check(token: string, ip: string): Promise<{ principal: Principal } | { refused: Refusal } | { invalid: true }> {
    const hash = sha256(token);
    const cached = this.cache.get(hash);
    if (cached && cached.validUntil > this.now()) return { principal: cached.principal };
    const attempt = this.abuse && { door: 'bearer' as const, source: sourceOf(ip) };
    if (attempt) {
      const refused = this.abuse!.checkLocal(attempt, this.isKnownGood(hash));
      if (refused) return { refused };
    }
    const principal = await this.resolveHashed(token, hash);
    if (principal) return { principal };
    if (attempt) await this.abuse!.failure(attempt);
    return { invalid: true };
  }

  private isKnownGood(hash: string): boolean {
    const seen = this.knownGood.get(hash);
    return seen !== undefined && this.now() - seen < KNOWN_GOOD_MS;
  }

  /**
   * A credential, a family or device/key (revocation group), everything acting for a user, or every
   * token of an OAuth client was revoked, rotated or deleted through `db`: forgotten on this node now, and on every other node
   * when that change commits (storage/invalidations.ts).
   */
  async revoked(match: CredentialMatch, db: Db): Promise<void> {
    this.evict(match);
    await announce(db, { kind: 'credentials', ...match });
  }

  /** Forget cached principals matching on this node, immediately (revoked() also tells the other nodes). */
  evict(match: CredentialMatch): void {
    for (const [hash, entry] of this.cache) {
      const { principal } = entry;
      if (
        hash === match.credentialHash ||
        (match.revocationGroup !== undefined && principal.revocationGroup === match.revocationGroup) ||
        (match.userId !== undefined && principal.userId === match.userId) ||
        (match.clientPk !== undefined && principal.token?.clientPk === match.clientPk)
      ) {
        this.cache.delete(hash);
      }
    }
  }

  /** Forget every cached principal (invalidations may have been missed). */
  clear(): void {
    this.cache.clear();
  }
}
