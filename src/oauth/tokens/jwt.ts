import { randomBytes } from 'node:crypto';
import { type CryptoKey, type JWK, type JWTPayload, SignJWT, decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import type { Db } from '../../storage/database.js';
import { CLOCK_SKEW_SECONDS, JWT_ALG, type SigningKeyRow, ensureCurrentKey, listPublishedKeys } from './signing-keys.repo.js';

/**
 * RFC 9068 JWT access tokens: signing with the current key, verification against the published
 * ones, and the JWKS document. Keys are cached in process and re-read every KEY_REFRESH_MS (and
 * when a token names an unknown kid, at most every UNKNOWN_KID_REFRESH_MS), so a rotation made by
 * the CLI or another node is picked up within a minute; the retired key keeps verifying meanwhile.
 */

const KEY_REFRESH_MS = 60_000;
const UNKNOWN_KID_REFRESH_MS = 5_000;
export const JWT_ACCESS_TOKEN_TYPE = 'at+jwt';

interface LoadedKey {
  row: SigningKeyRow;
  publicKey: CryptoKey;
  privateKey?: CryptoKey;
}

export interface JwtClaims {
  sub: string;
  clientId: string;
  scope: string;
  organizationId: string;
  jti: string;
  issuedAt: number;
  expiresAt: number;
}

export class SigningKeyStore {
  private published = new Map<string, LoadedKey>();
  private current: LoadedKey | undefined;
  private loadedAt = 0;
  private lastUnknownRefresh = 0;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly db: Db,
    readonly issuer: string,
    private readonly now: () => number = Date.now,
  ) {}

  private async load(ensureCurrent: boolean): Promise<void> {
    const currentRow = ensureCurrent ? await ensureCurrentKey(this.db) : undefined;
    const rows = await listPublishedKeys(this.db);
    const published = new Map<string, LoadedKey>();
    for (const row of rows) {
      const previous = this.published.get(row.kid);
      published.set(row.kid, previous ?? { row, publicKey: (await importJWK(row.publicJwk, JWT_ALG)) as CryptoKey });
    }
    this.published = published;
    const newest = currentRow ?? rows.find((r) => r.retiredAt === null);
    if (newest) {
      const entry = published.get(newest.kid) ?? { row: newest, publicKey: (await importJWK(newest.publicJwk, JWT_ALG)) as CryptoKey };
      entry.privateKey ??= (await importJWK(newest.privateJwk, JWT_ALG)) as CryptoKey;
      this.current = entry;
    } else {
      this.current = undefined;
    }
    this.loadedAt = this.now();
  }

  private refresh(ensureCurrent: boolean): Promise<void> {
    this.loading ??= this.load(ensureCurrent).finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  /** The key to sign with, created on first use. Call outside database transactions. */
  async signingKey(): Promise<LoadedKey> {
    if (!this.current || this.now() - this.loadedAt > KEY_REFRESH_MS) await this.refresh(true);
    if (!this.current) await this.refresh(true);
    return this.current as LoadedKey;
  }

  async sign(claims: JwtClaims, audience: string): Promise<string> {
    const key = await this.signingKey();
    const payload: JWTPayload = { client_id: claims.clientId, scope: claims.scope, org_id: claims.organizationId };
    return new SignJWT(payload)
      .setProtectedHeader({ alg: JWT_ALG, typ: JWT_ACCESS_TOKEN_TYPE, kid: key.row.kid })
      .setIssuer(this.issuer)
      .setSubject(claims.sub)
      .setAudience(audience)
      .setIssuedAt(claims.issuedAt)
      .setExpirationTime(claims.expiresAt)
      .setJti(claims.jti)
      .sign(key.privateKey as CryptoKey);
  }

  private async verificationKey(kid: string): Promise<CryptoKey | undefined> {
    if (this.now() - this.loadedAt > KEY_REFRESH_MS) await this.refresh(false);
    let entry = this.published.get(kid);
    if (!entry && this.now() - this.lastUnknownRefresh > UNKNOWN_KID_REFRESH_MS) {
      this.lastUnknownRefresh = this.now();
      await this.refresh(false);
      entry = this.published.get(kid);
    }
    return entry?.publicKey;
  }

  /**
   * Verifies a JWT access token of this issuer (signature, `typ`, `iss`, expiry) and returns its
   * claims; undefined for anything else. Revocation is checked by the caller, by `jti`.
   */
  async verify(token: string): Promise<(JWTPayload & { jti: string }) | undefined> {
    try {
      const header = decodeProtectedHeader(token);
      if (header.alg !== JWT_ALG || typeof header.kid !== 'string') return undefined;
      const key = await this.verificationKey(header.kid);
      if (!key) return undefined;
      const { payload } = await jwtVerify(token, key, {
        issuer: this.issuer,
        typ: JWT_ACCESS_TOKEN_TYPE,
        algorithms: [JWT_ALG],
        clockTolerance: CLOCK_SKEW_SECONDS,
      });
      if (typeof payload.jti !== 'string' || payload.jti === '') return undefined;
      return payload as JWTPayload & { jti: string };
    } catch {
      return undefined;
    }
  }

  /** The JWKS document (RFC 7517): current and still-published retired public keys. */
  async jwks(): Promise<{ keys: JWK[] }> {
    await this.refresh(false);
    return { keys: [...this.published.values()].map((k) => k.row.publicJwk) };
  }
}

export const newJti = (): string => randomBytes(24).toString('base64url');
