import { createHmac, randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { safeEqual } from '../../security/tokens.js';

/**
 * The browser session of the login, consent, device and account pages: one signed, HttpOnly,
 * SameSite=Lax cookie (`@fastify/cookie`, HMAC-SHA256 with the installation's session secret, so
 * any node sharing the database honours it). It holds a random per-browser nonce and, once the
 * user has signed in, the user id and the time of sign-in; nothing is stored server-side.
 *
 * CSRF: every form carries HMAC(secret, "csrf" ‖ nonce). The nonce is only in the HttpOnly cookie
 * and a new one is drawn at sign-in and sign-out, so a token is bound to one browser and one login,
 * and cannot be computed without the secret (the synchronizer-token pattern without server state).
 */

export interface BrowserSession {
  /** Random per-browser value; the CSRF token is derived from it. */
  nonce: string;
  userId: string | null;
  /** Unix ms of sign-in. */
  issuedAt: number | null;
}

/** A signed-in session lasts at most this long, however active (absolute lifetime). */
export const SESSION_LIFETIME_MS = 12 * 60 * 60 * 1000;

const VERSION = 's1';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class Sessions {
  readonly cookieName: string;
  private csrfKey: Buffer | undefined;
  private readonly secure: boolean;

  constructor(publicUrl: string, private readonly now: () => number = Date.now) {
    this.secure = publicUrl.startsWith('https:');
    // `__Host-` pins the cookie to this exact origin (no Domain, Path=/), but browsers accept it
    // only with Secure, so a plain-http self-host uses an ordinary name.
    this.cookieName = this.secure ? '__Host-sc_session' : 'sc_session';
  }

  /** The installation's session secret (also the cookie plugin's signing key). */
  setSecret(secret: string): void {
    this.csrfKey = createHmac('sha256', secret).update('sensorcloud csrf key').digest();
  }

  /** The session of this request, if its cookie is present, correctly signed and not expired. */
  read(request: FastifyRequest): BrowserSession | null {
    const rawCookie = request.cookies[this.cookieName];
    if (!rawCookie) return null;
    const unsigned = request.unsignCookie(rawCookie);
    if (!unsigned.valid || unsigned.value === null) return null;
    const [version, nonce, userId, issuedAt] = unsigned.value.split('.');
    if (version !== VERSION || !nonce || nonce.length < 16) return null;
    if (!userId) return { nonce, userId: null, issuedAt: null };
    const issued = Number(issuedAt);
    if (!UUID.test(userId) || !Number.isSafeInteger(issued)) return { nonce, userId: null, issuedAt: null };
    const age = this.now() - issued;
    // An expired sign-in keeps its nonce: forms rendered before expiry still pass the CSRF check
    // and lead to the login page instead of an error.
    if (age < 0 || age > SESSION_LIFETIME_MS) return { nonce, userId: null, issuedAt: null };
    return { nonce, userId, issuedAt: issued };
  }

  /** The current session, or a new anonymous one (its cookie set on the reply). */
  ensure(request: FastifyRequest, reply: FastifyReply): BrowserSession {
    const existing = this.read(request);
    if (existing) return existing;
    const session: BrowserSession = { nonce: newNonce(), userId: null, issuedAt: null };
    this.write(reply, session);
    return session;
  }

  /** Signs the user in with a fresh nonce (no session fixation; earlier CSRF tokens die). */
  signIn(reply: FastifyReply, userId: string): BrowserSession {
    const session: BrowserSession = { nonce: newNonce(), userId, issuedAt: this.now() };
    this.write(reply, session);
    return session;
  }

  /** Signs out, keeping an anonymous session (with a new nonce) so the next form works. */
  signOut(reply: FastifyReply): BrowserSession {
    const session: BrowserSession = { nonce: newNonce(), userId: null, issuedAt: null };
    this.write(reply, session);
    return session;
  }

  csrfToken(session: BrowserSession): string {
    if (!this.csrfKey) throw new Error('session secret not loaded');
    return createHmac('sha256', this.csrfKey).update(session.nonce).digest('base64url');
  }

  /** True when the form's token was made for this browser's current session. */
  verifyCsrf(session: BrowserSession | null, token: unknown): boolean {
    if (!session || typeof token !== 'string' || token === '') return false;
    return safeEqual(this.csrfToken(session), token);
  }

  private write(reply: FastifyReply, session: BrowserSession): void {
    const value = session.userId ? [VERSION, session.nonce, session.userId, String(session.issuedAt)].join('.') : [VERSION, session.nonce].join('.');
    reply.setCookie(this.cookieName, value, {
      signed: true,
      httpOnly: true,
      sameSite: 'lax',
      secure: this.secure,
      path: '/',
      // A browser-session cookie; the signed-in part expires server-side after SESSION_LIFETIME_MS.
    });
  }
}

const newNonce = (): string => randomBytes(18).toString('base64url');
