import * as client from 'openid-client';
import type { IdentityProvider } from './external-signin.schema.js';

/**
 * The relying-party side of external sign-in, on openid-client: provider metadata discovered once
 * per issuer and kept for a while (a failed discovery is not kept), every request to the provider
 * bounded by a timeout. An issuer must be https, except on a loopback address (development, tests).
 */

const METADATA_TTL_MS = 10 * 60 * 1000;
const MAX_CACHED_ISSUERS = 500;

/** The provider could not be reached or did not answer as an OpenID provider: a 502 page. */
export class ProviderUnavailable extends Error {}

export class RelyingParty {
  private readonly metadata = new Map<string, { server: client.ServerMetadata; until: number }>();

  constructor(private readonly timeoutSeconds: number) {}

  /** openid-client's configuration for a provider, its metadata discovered (or cached). */
  async configuration(provider: Pick<IdentityProvider, 'issuer' | 'client_id'>, clientSecret: string): Promise<client.Configuration> {
    const server = await this.serverMetadata(provider.issuer);
    const config = new client.Configuration(server, provider.client_id, clientSecret, client.ClientSecretBasic(clientSecret));
    config.timeout = this.timeoutSeconds;
    if (new URL(provider.issuer).protocol === 'http:') client.allowInsecureRequests(config);
    return config;
  }

  private async serverMetadata(issuer: string): Promise<client.ServerMetadata> {
    const cached = this.metadata.get(issuer);
    if (cached && cached.until > Date.now()) return cached.server;
    let discovered: client.Configuration;
    try {
      discovered = await client.discovery(new URL(issuer), 'discovery', undefined, undefined, {
        timeout: this.timeoutSeconds,
        ...(new URL(issuer).protocol === 'http:' && { execute: [client.allowInsecureRequests] }),
      });
    } catch (error) {
      throw new ProviderUnavailable(`discovery of ${issuer} failed`, { cause: error });
    }
    const server = discovered.serverMetadata();
    if (this.metadata.size >= MAX_CACHED_ISSUERS) this.metadata.clear();
    this.metadata.set(issuer, { server, until: Date.now() + METADATA_TTL_MS });
    return server;
  }
}

/** Whether an error of a request to the provider means it is unreachable or broken (502), not that its answer was refused (400). */
export function isUnavailable(error: unknown): boolean {
  if (error instanceof ProviderUnavailable || error instanceof TypeError) return true;
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return true;
  if (error instanceof client.ResponseBodyError) return error.status >= 500;
  if (error instanceof client.ClientError) {
    return error.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' || error.code === 'OAUTH_RESPONSE_IS_NOT_JSON' || isUnavailable(error.cause);
  }
  return false;
}
