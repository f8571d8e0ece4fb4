import { hash, randomBytes } from 'node:crypto';
import type { AbuseGuard, AttemptResult, Refusal } from '../abuse/guard.js';
import { unstorableText } from '../http/boundary.js';
import { verifyPassword } from '../security/passwords.js';
import { safeEqual } from '../security/tokens.js';
import type { Db } from '../storage/database.js';
import { findClientByClientIdCached } from './clients.repo.js';
import { type OAuthError, invalidClient, invalidRequest, tooManyRequests } from './errors.js';
import type { OAuthClient } from './oauth.schema.js';
import type { OAuthSettings } from './settings.js';

/**
 * Client authentication at the token, revocation, introspection and device endpoints
 * (RFC 6749 §2.3): `client_secret_basic`, `client_secret_post`, and `none` for public clients.
 *
 * Secrets are stored as argon2id hashes, because provisioned secrets may be human-chosen and a
 * database leak must not reveal them. Verifying argon2id costs ~20 ms of CPU, which would make
 * every client_credentials request hash-bound; so a successful verification is remembered in
 * process for a few minutes as SHA-256(per-process random key ‖ secret), keyed by client and
 * tied to the stored hash and `updated_at` (a rotated secret misses at once on this node, and
 * on every other node as soon as the change commits (storage/invalidations.ts), at the latest within
 * a second, since the client row is cached for at most 1 s:
 * `findClientByClientIdCached`). Repeat authentications are then one hash and one constant-time
 * compare. The cache holds no secret and nothing brute-forceable offline (the key never leaves
 * the process). A keyed one-shot hash rather than createHmac: the digests are only ever compared
 * with each other, never verified by anyone else, so HMAC's extra guarantees buy nothing here,
 * and createHmac cost 2.9 µs a request against 0.4. Failures are never cached and go through
 * argon2id and the per-client back-off. See ARCHITECTURE.md, "Authorization server".
 */

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none';

export interface AuthenticatedClient {
  client: OAuthClient;
  method: ClientAuthMethod;
}

export type Params = Record<string, string>;

export interface ClientAuthOptions {
  /**
   * Lets a confidential client be identified by client_id alone for this request (the
   * Sensorberg external-token password grant, whose documented request carries no secret).
   */
  secretless?: (client: OAuthClient) => boolean;
}

interface BasicCredentials {
  /** Form-urldecoded per RFC 6749 §2.3.1. */
  clientId: string;
  secret: string;
  /** As sent, for clients that did not form-encode (tried second). */
  rawClientId: string;
  rawSecret: string;
}

function formDecode(value: string): string {
  // Most credentials need no decoding, and this runs for every client authentication.
  if (!value.includes('%') && !value.includes('+')) return value;
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return value;
  }
}

/** Parses `Authorization: Basic …`; undefined for other schemes; throws invalid_client when malformed. */
export function parseBasicAuthorization(header: string | undefined): BasicCredentials | undefined {
  if (header === undefined) return undefined;
  const match = /^Basic(?: +(\S*))? *$/i.exec(header);
  if (!match) {
    if (/^Basic\b/i.test(header)) throw invalidClient('The Basic credentials are malformed.', true);
    return undefined;
  }
  const encoded = match[1] ?? '';
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) throw invalidClient('The Basic credentials are not valid base64.', true);
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw invalidClient('The Basic credentials must be client_id:client_secret.', true);
  const rawClientId = decoded.slice(0, colon);
  const rawSecret = decoded.slice(colon + 1);
  const credentials = { clientId: formDecode(rawClientId), secret: formDecode(rawSecret), rawClientId, rawSecret };
  if (Object.values(credentials).some((value) => unstorableText(value) !== undefined))
    throw invalidClient('The Basic credentials hold characters no client_id or secret can contain.', true);
  return credentials;
}

interface CachedSecret {
  mac: string;
  secretHash: string;
  updatedAt: number;
  until: number;
}

const MAX_CACHED = 10_000;

export class ClientAuthenticator {
  private readonly macKey = randomBytes(32).toString('hex');
  private readonly verified = new Map<string, CachedSecret>();
  private readonly inflight = new Map<string, Promise<boolean>>();
  /** Identical concurrent authentications (same client, secrets and source) share one guarded check. */
  private readonly attempts = new Map<string, Promise<AttemptResult<true>>>();

  constructor(
    private readonly db: Db,
    private readonly settings: Pick<OAuthSettings, 'secretCacheTtlMs'>,
    private readonly guard: AbuseGuard,
    private readonly now: () => number = Date.now,
    /** argon2id verification (injectable for tests). */
    private readonly verify: (hash: string | null, secret: string) => Promise<boolean> = verifyPassword,
  ) {}

  /**
   * Authenticates the client of a request, or throws invalid_client / invalid_request / 429.
   * `source`: sourceOf(request.ip), the address failures are counted for (abuse/guard.ts).
   */
  async authenticate(
    authorization: string | undefined,
    params: Params,
    source: string,
    options: ClientAuthOptions = {},
  ): Promise<AuthenticatedClient> {
    const basic = parseBasicAuthorization(authorization);
    const postId = params.client_id;
    const postSecret = params.client_secret;
    if (basic && postSecret !== undefined)
      throw invalidRequest('The client used more than one authentication method (HTTP Basic and client_secret); use one.');
    if (basic && postId !== undefined && postId !== basic.clientId && postId !== basic.rawClientId) {
      throw invalidRequest('client_id does not match the client of the Authorization header.');
    }
    if (!basic && postId === undefined)
      throw invalidClient('Client authentication is required (HTTP Basic, or client_id and client_secret).', false);

    const usedBasic = basic !== undefined;
    const candidates = basic ? unique([basic.clientId, basic.rawClientId]) : [postId as string];
    const secrets = basic ? unique([basic.secret, basic.rawSecret]) : postSecret === undefined ? [] : [postSecret];
    let client: OAuthClient | undefined;
    for (const id of candidates) {
      if (id.length > 200) continue;
      client = await findClientByClientIdCached(this.db, id, this.now());
      if (client) break;
    }
    const failed = () => invalidClient('Client authentication failed.', usedBasic);

    if (!client) {
      // An unknown client_id with a secret costs the same argon2id run as a known one (timing does
      // not reveal which ids exist) and is counted against the source like any wrong secret.
      const secret = secrets[0];
      if (secret !== undefined) {
        const result = await this.guard.attempt({ door: 'client', source }, async () => void (await this.verify(null, secret)));
        if ('refused' in result) throw refusedClient(result.refused);
      }
      throw failed();
    }
    // A disabled application is refused like a wrong secret, whatever it sends (its id is public anyway).
    if (!client.enabled) throw invalidClient('This application is disabled.', usedBasic);
    if (secrets.length === 0) {
      if (client.public || options.secretless?.(client)) return { client, method: 'none' };
      throw failed();
    }
    if (client.public || !client.secret_hash)
      throw invalidClient('This is a public client: it authenticates with client_id only, without a secret.', usedBasic);

    const method = usedBasic ? 'client_secret_basic' : 'client_secret_post';
    const attempt = { door: 'client' as const, credential: client.id, source };
    // A secret this node verified recently: one hash and a look at this node's view of blocks, no
    // round trip (the hot path of client_credentials and introspection). The pair's own block still
    // applies, so the cache is no oracle for a guesser that has been stopped.
    if (secrets.some((secret) => this.isCached(client, secret))) {
      const refused = this.guard.checkLocal(attempt, true);
      if (refused) throw refusedClient(refused);
      return { client, method };
    }
    const key = `${client.id}\u0000${client.secret_hash}\u0000${source}\u0000${secrets.map((secret) => this.mac(secret)).join('\u0000')}`;
    let pending = this.attempts.get(key);
    if (!pending) {
      const verifying = client;
      pending = this.guard
        .attempt(attempt, async () => {
          for (const secret of secrets) if (await this.verifySecret(verifying, secret)) return true as const;
          return undefined;
        })
        .finally(() => this.attempts.delete(key));
      this.attempts.set(key, pending);
    }
    const result = await pending;
    if ('refused' in result) throw refusedClient(result.refused);
    if ('failed' in result) throw failed();
    return { client, method };
  }

  private mac(secret: string): string {
    return hash('sha256', this.macKey + secret, 'base64url');
  }

  /** Whether `secret` is the one this node verified for the client's current row. */
  private isCached(client: OAuthClient, secret: string): boolean {
    const entry = this.verified.get(client.id);
    return (
      entry !== undefined &&
      entry.until > this.now() &&
      entry.secretHash === client.secret_hash &&
      entry.updatedAt === client.updated_at.getTime() &&
      secret.length <= 1024 &&
      safeEqual(entry.mac, this.mac(secret))
    );
  }

  /** argon2id verification behind the verified-secret cache described above. */
  async verifySecret(client: OAuthClient, secret: string): Promise<boolean> {
    const secretHash = client.secret_hash;
    if (!secretHash || secret.length > 1024) return false;
    if (this.isCached(client, secret)) return true;
    const mac = this.mac(secret);

    // Concurrent first requests of one client share one argon2id verification.
    const flightKey = `${client.id}:${secretHash}:${mac}`;
    let pending = this.inflight.get(flightKey);
    if (!pending) {
      pending = this.verify(secretHash, secret).finally(() => this.inflight.delete(flightKey));
      this.inflight.set(flightKey, pending);
    }
    const ok = await pending;
    if (ok) {
      this.verified.delete(client.id);
      if (this.verified.size >= MAX_CACHED) this.verified.delete(this.verified.keys().next().value as string);
      this.verified.set(client.id, {
        mac,
        secretHash,
        updatedAt: client.updated_at.getTime(),
        until: this.now() + this.settings.secretCacheTtlMs,
      });
    }
    return ok;
  }

  /** Forgets a client's verified secret (its secret changed on this node). */
  forget(clientPk: string): void {
    this.verified.delete(clientPk);
  }

  prune(): void {
    const now = this.now();
    for (const [key, entry] of this.verified) if (entry.until <= now) this.verified.delete(key);
  }
}

/** 429 for a client authentication the abuse guard did not let through. */
function refusedClient(refusal: Refusal): OAuthError {
  const what = refusal.scope === 'credential' ? 'of this client from this address' : 'from this address';
  return tooManyRequests(`Too many failed authentications ${what}; retry in ${refusal.retryAfterSeconds} s.`, refusal.retryAfterSeconds, {
    max: refusal.policy.freeFailures,
    windowSeconds: Math.ceil(refusal.policy.forgetAfterMs / 1000),
  });
}

/** The decoded and the raw form of a Basic credential, once when they are the same. */
function unique([decoded, raw]: [string, string]): string[] {
  return decoded === raw ? [decoded] : [decoded, raw];
}
