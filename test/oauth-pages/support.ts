import { Browser as FormClient } from '../support/browser.js';
import { passwordsOf, specExampleYaml } from '../support/files.js';
import { type TestServer, type TestServerOptions, startTestServer, useTestServer } from '../support/server.js';

export { type Form, parseForms } from '../support/browser.js';

/**
 * A real server on 127.0.0.1 provisioned with SPEC §7's example plus a few users and clients the
 * page tests need, and the browser-less form client signing in with their passwords.
 */

/** The page tests' additions to the SPEC §7 example. */
const PAGES_PROVISIONING = specExampleYaml(`
acme:
  users:
    - { email: member@acme.test, password: "Memb3r-pass-acme", role: member }
  clients:
    - client_id: acme-m2m
      redirect_uris: ["http://127.0.0.1:9876/m2m"]
    - client_id: acme-admin-tool
      client_secret: "acme-admin-tool-secret"
      name: Acme Admin Tool
      redirect_uris: ["http://127.0.0.1:9876/admin?tenant=acme", "http://127.0.0.1:9876/admin2"]
      grant_types: [authorization_code]
      scopes: [devices:read, devices:write, users:write]
    - client_id: acme-cli
      public: true
      name: Acme CLI
      grant_types: ["urn:ietf:params:oauth:grant-type:device_code"]
      scopes: [devices:read, readings:read, devices:write]
organizations:
  - slug: globex
    name: Globex
    users:
      - { email: owner@globex.test, password: "Own3r-pass-globex", role: owner }
`);

export const PASSWORDS: Record<string, string> = passwordsOf(PAGES_PROVISIONING);

export const WEB = { clientId: 'acme-web', secret: 'acme-web-secret', redirectUri: 'http://127.0.0.1:9876/callback' };
export const SPA = { clientId: 'acme-spa', redirectUri: 'http://127.0.0.1:9876/spa' };
export const ADMIN_TOOL = { clientId: 'acme-admin-tool', redirectUri: 'http://127.0.0.1:9876/admin?tenant=acme' };

export type PagesServer = TestServer;

/** PUBLIC_URL (the issuer) is exactly the address the server answers on; on the embedded database unless told. */
export function startPagesServer(options: Pick<TestServerOptions, 'backend' | 'databaseUrl'> = {}): Promise<PagesServer> {
  return startTestServer({ ...options, provisioning: PAGES_PROVISIONING, exactPublicUrl: true });
}

/** A pages server for the enclosing describe block (started before its tests, stopped after). */
export function usePagesServer(options: Pick<TestServerOptions, 'backend'> = {}): PagesServer {
  return useTestServer(() => startPagesServer(options));
}

/** The form client, signing in with this suite's passwords when a test gives only the email. */
export class Browser extends FormClient {
  constructor(base: string) {
    super(base, PASSWORDS);
  }
}

export function authorizeUrl(params: Record<string, string | undefined>, path = '/oauth/authorize'): string {
  const query = new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined));
  return `${path}?${query}`;
}

/** Query parameters of a redirect's Location, decoded. */
export function locationParams(response: Response): { base: string; params: URLSearchParams } {
  const location = response.headers.get('location');
  if (!location) throw new Error(`no Location header (status ${response.status})`);
  const url = new URL(location);
  return { base: `${url.origin}${url.pathname}`, params: url.searchParams };
}
