/** What makes an identity provider's settings acceptable, for the API and the provisioning file alike. */

/** An email domain: `example.com`, `mail.example.co.uk` (compared lower-case). */
export const DOMAIN_PATTERN = '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$';

export const normalizeDomains = (domains: readonly string[]): string[] => [...new Set(domains.map((d) => d.toLowerCase()))];

/** Why an issuer is refused: it must be https, except on a loopback address (development, tests). */
export function issuerProblem(issuer: string): string | undefined {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return 'must be an absolute URL';
  }
  if (url.search || url.hash) return 'must not carry a query or fragment';
  if (url.username || url.password) return 'must not carry credentials';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && isLoopback(url.hostname)) return undefined;
  return 'must use https';
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}
