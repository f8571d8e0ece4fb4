import { sql } from 'kysely';
import type { Db } from '../storage/database.js';
import { generateToken, sha256 } from '../security/tokens.js';

/**
 * Authorization codes (RFC 6749 §4.1, RFC 7636). The authorize pages call
 * `issueAuthorizationCode` after consent; the token endpoint's authorization_code grant calls
 * `redeemAuthorizationCode`. Only the SHA-256 of a code is stored; a code lives at most
 * AUTHORIZATION_CODE_TTL_SECONDS and is spent by a conditional UPDATE, so it is redeemed once even
 * when two requests race. A second presentation is a replay: the grant issued from the first is
 * revoked (RFC 6749 §4.1.2, RFC 9700 §4.5).
 */

export const AUTHORIZATION_CODE_TTL_SECONDS = 60;
export const AUTHORIZATION_CODE_PREFIX = 'sc_ac_';

export interface AuthorizationCodeInput {
  clientPk: string;
  organizationId: string;
  userId: string;
  /** The redirect URI the code is sent to; the token request must present the same one. */
  redirectUri: string;
  /** Effective (expanded) scopes, as decided by decideScopes. */
  scopes: readonly string[];
  /** The scope string to echo in the token response (aliases as requested). */
  scopeDisplay: string;
  /** PKCE (RFC 7636): only S256 is accepted; required for public clients. */
  codeChallenge?: string | null | undefined;
  codeChallengeMethod?: string | null | undefined;
}

export class AuthorizationCodeInputError extends Error {}

/** Stores a new authorization code and returns it (the only time it exists in clear). */
export async function issueAuthorizationCode(db: Db, input: AuthorizationCodeInput): Promise<string> {
  const method = input.codeChallenge ? (input.codeChallengeMethod ?? 'plain') : null;
  if (method !== null && method !== 'S256') throw new AuthorizationCodeInputError('only the S256 code_challenge_method is supported');
  if (input.codeChallenge && !/^[A-Za-z0-9\-._~]{43,128}$/.test(input.codeChallenge)) {
    throw new AuthorizationCodeInputError('code_challenge must be 43-128 characters of [A-Za-z0-9-._~]');
  }
  const code = generateToken(AUTHORIZATION_CODE_PREFIX);
  await db
    .insertInto('oauth_authorization_codes')
    .values({
      code_hash: sha256(code),
      organization_id: input.organizationId,
      client_pk: input.clientPk,
      user_id: input.userId,
      redirect_uri: input.redirectUri,
      scopes: [...input.scopes],
      scope_display: input.scopeDisplay,
      code_challenge: input.codeChallenge ?? null,
      code_challenge_method: method,
      expires_at: sql<Date>`now() + make_interval(secs => ${AUTHORIZATION_CODE_TTL_SECONDS})`,
    })
    .execute();
  return code;
}

export interface RedeemedCode {
  codeHash: string;
  organizationId: string;
  clientPk: string;
  userId: string;
  redirectUri: string;
  scopes: string[];
  scopeDisplay: string;
  codeChallenge: string | null;
  codeChallengeMethod: string | null;
}

export type SpendResult =
  | { status: 'spent'; code: RedeemedCode }
  /** Presented before and already redeemed: `grantId` is what the first redemption issued. */
  | { status: 'replayed'; grantId: string | null; clientPk: string }
  | { status: 'unknown' };

/**
 * Marks the code used, atomically: of any number of concurrent presentations exactly one gets
 * `spent`. Must run inside the transaction that then issues the tokens and records the grant
 * (`attachGrantToCode`), so a replay racing the first redemption sees the grant to revoke.
 */
export async function spendAuthorizationCode(tx: Db, code: string): Promise<SpendResult> {
  const codeHash = sha256(code);
  const row = await tx
    .updateTable('oauth_authorization_codes')
    .set({ used_at: sql<Date>`now()` })
    .where('code_hash', '=', codeHash)
    .where('used_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .returningAll()
    .executeTakeFirst();
  if (row) {
    return {
      status: 'spent',
      code: {
        codeHash,
        organizationId: row.organization_id,
        clientPk: row.client_pk,
        userId: row.user_id,
        redirectUri: row.redirect_uri,
        scopes: row.scopes,
        scopeDisplay: row.scope_display,
        codeChallenge: row.code_challenge,
        codeChallengeMethod: row.code_challenge_method,
      },
    };
  }
  const used = await tx
    .selectFrom('oauth_authorization_codes')
    .select(['grant_id', 'client_pk', 'used_at'])
    .where('code_hash', '=', codeHash)
    .executeTakeFirst();
  if (used?.used_at) return { status: 'replayed', grantId: used.grant_id, clientPk: used.client_pk };
  return { status: 'unknown' };
}

export async function attachGrantToCode(tx: Db, codeHash: string, grantId: string): Promise<void> {
  await tx.updateTable('oauth_authorization_codes').set({ grant_id: grantId }).where('code_hash', '=', codeHash).execute();
}
