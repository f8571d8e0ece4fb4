import { hash, randomBytes } from 'node:crypto';
import { unstorableText } from '../http/boundary.js';
import { verifyPassword } from '../security/passwords.js';
import { safeEqual } from '../security/tokens.js';
import type { Db } from '../storage/database.js';
import { Backoff } from './backoff.js';
import { findClientByClientIdCached } from './clients.repo.js';
import { invalidClient, invalidRequest, tooManyRequests } from './errors.js';
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
 * within a second on every other, since the client row is cached for at most 1 s:
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
  if (Object.values(credentials).some((value) => unstorableText(value) !== undefined)) throw invalidClient('The Basic credentials hold characters no client_id or secret can contain.', true);
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
  readonly backoff: Backoff;

  constructor(
    private readonly db: Db,
    private readonly settings: Pick<OAuthSettings, 'clientBackoff' | 'secretCacheTtlMs'>,
    private readonly now: () => number = Date.now,
    /** argon2id verification (injectable for tests). */
    private readonly verify: (hash: string | null, secret: string) => Promise<boolean> = verifyPassword,
  ) {
    this.backoff = new Backoff(settings.clientBackoff, now);
  }

  /** Authenticates the client of a request, or throws invalid_client / invalid_request / 429. */
  async authenticate(authorization: string | undefined, params: Params, options: ClientAuthOptions = {}): Promise<AuthenticatedClient> {
    const basic = parseBasicAuthorization(authorization);
    const postId = params.client_id;
    const postSecret = params.client_secret;
    if (basic && postSecret !== undefined) throw invalidRequest('The client used more than one authentication method (HTTP Basic and client_secret); use one.');
    if (basic && postId !== undefined && postId !== basic.clientId && postId !== basic.rawClientId) {
      throw invalidRequest('client_id does not match the client of the Authorization header.');
    }
    if (!basic && postId === undefined) throw invalidClient('Client authentication is required (HTTP Basic, or client_id and client_secret).', false);

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
      // Same cost as a real check, so response timing does not reveal which client_ids exist.
      if (secrets[0] !== undefined) await this.verify(null, secrets[0]);
      throw failed();
    }
    if (secrets.length === 0) {
      if (client.public || options.secretless?.(client)) return { client, method: 'none' };
      throw failed();
    }
    if (client.public || !client.secret_hash) throw invalidClient('This is a public client: it authenticates with client_id only, without a secret.', usedBasic);

    const wait = this.backoff.retryAfter(client.id);
    if (wait > 0) throw tooManyRequests('Too many failed authentications of this client; retry later.', wait);
    for (const secret of secrets) {
      if (await this.verifySecret(client, secret)) {
        this.backoff.success(client.id);
        return { client, method: usedBasic ? 'client_secret_basic' : 'client_secret_post' };
      }
    }
    this.backoff.failure(client.id);
    throw failed();
  }

  /** argon2id verification behind the verified-secret cache described above. */
  async verifySecret(client: OAuthClient, secret: string): Promise<boolean> {
    const secretHash = client.secret_hash;
    if (!secretHash || secret.length > 1024) return false;
    const mac = hash('sha256', this.macKey + secret, 'base64url');
    const now = this.now();
    const updatedAt = client.updated_at.getTime();
    const entry = this.verified.get(client.id);
    if (entry && entry.until > now && entry.secretHash === secretHash && entry.updatedAt === updatedAt && safeEqual(entry.mac, mac)) return true;

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
      this.verified.set(client.id, { mac, secretHash, updatedAt, until: now + this.settings.secretCacheTtlMs });
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
    this.backoff.prune();
  }
}

/** The decoded and the raw form of a Basic credential, once when they are the same. */
function unique([decoded, raw]: [string, string]): string[] {
  return decoded === raw ? [decoded] : [decoded, raw];
}
