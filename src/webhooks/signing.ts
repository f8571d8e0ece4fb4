import { createHmac, randomBytes } from 'node:crypto';

/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): the secret is `whsec_` and
 * base64 of random bytes; each signature is `v1,` + base64(HMAC-SHA256(secret bytes,
 * `${id}.${timestamp}.${body}`)), several space-separated while a rotation keeps the previous
 * secret valid. Written on node:crypto (one HMAC per secret); the tests verify every delivery
 * with the `standardwebhooks` reference package, so the two must agree.
 */

export const SECRET_PREFIX = 'whsec_';

export function generateWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64');
}

export function signatureHeader(secrets: readonly string[], id: string, timestampSeconds: number, body: string): string {
  return secrets
    .map((secret) => {
      const key = Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');
      return `v1,${createHmac('sha256', key).update(`${id}.${timestampSeconds}.${body}`).digest('base64')}`;
    })
    .join(' ');
}
