import { randomUUID } from 'node:crypto';
import type { BearerAuthenticator } from '../../auth/bearer.js';
import type { Principal } from '../../auth/principal.js';
import { type Scope, boundUserScopes, isScope, roleScopes } from '../../identity/scopes.js';
import { generateToken, sha256 } from '../../security/tokens.js';
import type { Db } from '../../storage/database.js';
import { GroupCommit } from '../../storage/group-commit.js';
import type { GrantType } from '../grant-types.js';
import type { OAuthClient } from '../oauth.schema.js';
import { type SigningKeyStore, newJti } from './jwt.js';
import {
  type AccessTokenView,
  type RefreshTokenView,
  findAccessTokenOwner,
  findActiveAccessToken,
  findRefreshToken,
  type NewIssuance,
  insertAccessToken,
  insertGrantsWithTokens,
  insertRefreshToken,
  revokeAccessToken,
  revokeGrant,
} from './tokens.repo.js';

/**
 * Issuing, resolving and revoking access and refresh tokens. Opaque tokens are `sc_at_…` /
 * `sc_rt_…` with 256 random bits, stored as SHA-256. JWT access tokens (RFC 9068) are stored by
 * the SHA-256 of their `jti`, so they are revocable exactly like opaque ones. Revocation evicts
 * this node's bearer cache at once and every other node's when it commits (storage/invalidations.ts;
 * the cache's 1 s lifetime is the fallback).
 */

export const ACCESS_TOKEN_PREFIX = 'sc_at_';
export const REFRESH_TOKEN_PREFIX = 'sc_rt_';
export const JWT_PREFIX = 'eyJ';

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token?: string;
  scope: string;
  created_at: number;
}

export interface IssueRequest {
  client: OAuthClient;
  organizationId: string;
  userId: string | null;
  grantType: GrantType;
  /** Effective scopes of the access token. */
  scopes: readonly string[];
  scopeDisplay: string;
  withRefreshToken: boolean;
  /** The family to add to (refresh rotation); a new grant is created otherwise. */
  grantId?: string;
  /** Scopes of a new grant when they differ from the token's (never narrower than `scopes`). */
  grantScopes?: readonly string[];
  grantScopeDisplay?: string;
}

export interface Issued {
  response: TokenResponse;
  grantId: string;
}

/**
 * Issuances outside a transaction (client credentials, password, device code) are group-committed:
 * under load the tokens of concurrent requests share one INSERT statement and one commit, which is
 * what bounds issuance on a durable database. Each request is still answered only after its own
 * token is committed. One statement in flight measured best: with two or four, batches were
 * smaller and PostgreSQL spent more per token (docs/performance.md).
 */
const ISSUANCE_GROUP_COMMIT = { maxBatch: 200, maxInFlight: 1 };

export class TokenService {
  private readonly issuances: GroupCommit<NewIssuance>;

  constructor(
    private readonly db: Db,
    private readonly keys: SigningKeyStore,
    private readonly bearer: BearerAuthenticator,
    private readonly audience: string,
    private readonly defaultRefreshTtl: number,
  ) {
    this.issuances = new GroupCommit((batch) => insertGrantsWithTokens(db, batch), ISSUANCE_GROUP_COMMIT);
  }

  /** Loads the signing key ahead of a transaction (never query outside `tx` inside one). */
  async prepare(client: OAuthClient): Promise<void> {
    if (client.token_format === 'jwt') await this.keys.signingKey();
  }

  refreshTtl(client: OAuthClient): number {
    return client.refresh_token_ttl ?? Math.max(this.defaultRefreshTtl, client.access_token_ttl);
  }

  /** Records the grant (unless continuing one) and issues its tokens; `db` may be a transaction. */
  async issue(db: Db, request: IssueRequest): Promise<Issued> {
    const { client } = request;
    const createdAt = Math.floor(Date.now() / 1000);
    const ttl = client.access_token_ttl;
    const createdAtDate = new Date(createdAt * 1000);
    const expiresAt = new Date((createdAt + ttl) * 1000);

    let accessToken: string;
    let tokenHash: string;
    if (client.token_format === 'jwt') {
      const jti = newJti();
      tokenHash = sha256(jti);
      accessToken = await this.keys.sign(
        {
          sub: request.userId !== null && request.grantType !== 'client_credentials' ? request.userId : client.client_id,
          clientId: client.client_id,
          scope: request.scopes.join(' '),
          organizationId: request.organizationId,
          jti,
          issuedAt: createdAt,
          expiresAt: createdAt + ttl,
        },
        this.audience,
      );
    } else {
      accessToken = generateToken(ACCESS_TOKEN_PREFIX);
      tokenHash = sha256(accessToken);
    }
    const refreshToken = request.withRefreshToken ? generateToken(REFRESH_TOKEN_PREFIX) : undefined;
    const refreshExpiresAt = new Date((createdAt + this.refreshTtl(client)) * 1000);
    const access = { tokenHash, scopes: request.scopes, scopeDisplay: request.scopeDisplay, createdAt: createdAtDate, expiresAt };

    let grantId: string;
    if (request.grantId === undefined) {
      grantId = randomUUID();
      const issuance: NewIssuance = {
        grantId,
        grant: {
          organizationId: request.organizationId,
          clientPk: client.id,
          userId: request.userId,
          grantType: request.grantType,
          scopes: request.grantScopes ?? request.scopes,
          scopeDisplay: request.grantScopeDisplay ?? request.scopeDisplay,
        },
        access,
        ...(refreshToken !== undefined && { refresh: { tokenHash: sha256(refreshToken), expiresAt: refreshExpiresAt } }),
      };
      // Inside a transaction the rows must commit (or roll back) with it.
      if (db.isTransaction) await insertGrantsWithTokens(db, [issuance]);
      else await this.issuances.submit(issuance);
    } else {
      grantId = request.grantId;
      await insertAccessToken(db, {
        ...access,
        grantId,
        organizationId: request.organizationId,
        clientPk: client.id,
        userId: request.userId,
      });
      if (refreshToken !== undefined) {
        await insertRefreshToken(db, {
          tokenHash: sha256(refreshToken),
          grantId,
          organizationId: request.organizationId,
          createdAt: createdAtDate,
          expiresAt: refreshExpiresAt,
        });
      }
    }

    const response: TokenResponse = {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: ttl,
      scope: request.scopeDisplay,
      created_at: createdAt,
    };
    if (refreshToken !== undefined) response.refresh_token = refreshToken;
    return { response, grantId };
  }

  /** The storage key of an access token: SHA-256 of the opaque token, or of a verified JWT's jti. */
  async accessTokenHash(token: string): Promise<string | undefined> {
    if (token.startsWith(ACCESS_TOKEN_PREFIX)) return sha256(token);
    if (token.startsWith(JWT_PREFIX)) {
      const claims = await this.keys.verify(token);
      return claims ? sha256(claims.jti) : undefined;
    }
    return undefined;
  }

  async findAccessToken(token: string): Promise<AccessTokenView | undefined> {
    const hash = await this.accessTokenHash(token);
    return hash === undefined ? undefined : findActiveAccessToken(this.db, hash);
  }

  async findRefreshToken(token: string): Promise<RefreshTokenView | undefined> {
    if (!token.startsWith(REFRESH_TOKEN_PREFIX)) return undefined;
    return findRefreshToken(this.db, sha256(token));
  }

  /**
   * Revokes one access token and forgets it on this node. With `clientPk`, only a token issued to
   * that client is revoked (`foreign` otherwise).
   */
  async revokeAccessToken(token: string, clientPk?: string): Promise<'revoked' | 'unknown' | 'foreign'> {
    const hash = await this.accessTokenHash(token);
    if (hash === undefined) return 'unknown';
    const owner = await findAccessTokenOwner(this.db, hash);
    if (!owner) return 'unknown';
    if (clientPk !== undefined && owner.clientPk !== clientPk) return 'foreign';
    await revokeAccessToken(this.db, hash);
    await this.bearer.revoked({ credentialHash: sha256(token) }, this.db);
    return 'revoked';
  }

  /** Revokes a family and forgets every cached token of it, here at once and on every node when `db` commits. */
  async revokeFamily(grantId: string, db: Db = this.db): Promise<void> {
    await revokeGrant(db, grantId);
    await this.bearer.revoked({ revocationGroup: grantId }, db);
  }
}

/** Effective scopes of a token now: as issued, narrowed by the user's current role. */
export function effectiveScopes(view: AccessTokenView): Set<Scope> {
  const issued = view.scopes.filter(isScope);
  if (view.userId === null || view.role === null) return new Set(issued);
  const allowed = view.grantType === 'client_credentials' ? boundUserScopes(view.role) : roleScopes(view.role);
  return new Set(issued.filter((s) => allowed.has(s)));
}

export function principalOfToken(view: AccessTokenView, credentialHash: string): Principal {
  return {
    kind: view.grantType === 'client_credentials' ? 'app_token' : 'user_token',
    organizationId: view.organizationId,
    userId: view.userId,
    clientId: view.clientId,
    scopes: effectiveScopes(view),
    credentialHash,
    revocationGroup: view.grantId,
    expiresAt: view.expiresAt,
    token: { clientPk: view.clientPk, grantType: view.grantType, userEmail: view.userEmail, createdAt: view.createdAt },
  };
}
