import { createHmac } from 'node:crypto';
import { safeEqual } from '../security/tokens.js';
import { isUuid } from '../storage/sql.js';

/**
 * The unsubscribe link of every email: `<user id>.<HMAC-SHA256(user id)>` under a key derived
 * from the server key (security/secret-box.ts `derivedServerKey`), so it works without signing in
 * and cannot be made for anyone else. It does not expire: an old email must still unsubscribe.
 */

const PURPOSE = 'sensorcloud unsubscribe v1:';

export function unsubscribeToken(key: Buffer, userId: string): string {
  return `${userId}.${createHmac('sha256', key)
    .update(PURPOSE + userId)
    .digest('base64url')}`;
}

/** The user the token was made for, or undefined when it is not one of ours. */
export function verifyUnsubscribeToken(key: Buffer, token: string): string | undefined {
  const [userId, mac, extra] = token.split('.');
  if (extra !== undefined || !userId || !mac || !isUuid(userId)) return undefined;
  return safeEqual(unsubscribeToken(key, userId), token) ? userId : undefined;
}
