import type { ClientAuthMethod, Params } from '../client-auth.js';
import type { OAuthClient } from '../oauth.schema.js';
import type { OAuthRuntime } from '../runtime.js';
import type { TokenResponse } from '../tokens/token-service.js';

/** One token request, after the client has been authenticated and allowed the grant type. */
export interface TokenRequest {
  rt: OAuthRuntime;
  client: OAuthClient;
  method: ClientAuthMethod;
  params: Params;
  /** sourceOf(request.ip): the address failures are counted for. */
  source: string;
  /** request.ip: the caller's address, as the audit log records it. */
  address: string;
}

export type GrantHandler = (request: TokenRequest) => Promise<TokenResponse>;

export { activeRole } from '../../identity/members.repo.js';
