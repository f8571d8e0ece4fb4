import { createHmac, randomBytes } from 'node:crypto';
import cookie, { Signer } from '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { deleteBrowserSession, findBrowserSessionUser, insertBrowserSession } from '../identity/sessions.repo.js';
import { generateToken, safeEqual, sha256 } from '../security/tokens.js';
import type { Db } from '../storage/database.js';
import { sessionSecret } from '../storage/instance.repo.js';
import type { User } from '../storage/schema.js';

/**
 * The browser session of the server-rendered pages (today the login, consent, device, account and
 * invitation pages of oauth/authorize/): one signed, HttpOnly,
 * SameSite=Lax cookie (`@fastify/cookie`, HMAC-SHA256 with the installation's session secret). It
 * holds a random per-browser nonce and, once the user has signed in, a random session id whose
 * SHA-256 is a `browser_sessions` row. The row is the authority: logout deletes it, it expires
 * after SESSION_LIFETIME_MS, a password change deletes every row of the user, and every node
 * sharing the database sees the same rows.
 *
 * CSRF: every form carries HMAC(secret, "csrf" ‖ nonce). The nonce is only in the HttpOnly cookie
 * and a new one is drawn at sign-in and sign-out, so a token is bound to one browser and one login,
 * and cannot be computed without the secret (the synchronizer-token pattern without server state).
 */

export interface BrowserSession {
  /** Random per-browser value; the CSRF token is derived from it. */
  nonce: string;
  /** The sign-in's random id (the cookie's; its SHA-256 is the row), or null when anonymous. */
  id: string | null;
}

/** A signed-in session lasts at most this long, however active (absolute lifetime). */
export const SESSION_LIFETIME_MS = 12 * 60 * 60 * 1000;

const VERSION = 's2';
const SESSION_ID_PREFIX = 'bs_';

export class Sessions {
  readonly cookieName: string;
  private csrfKey: Buffer | undefined;
  private readonly secure: boolean;

  constructor(
    private readonly db: Db,
    publicUrl: string,
  ) {
    this.secure = publicUrl.startsWith('https:');
    // `__Host-` pins the cookie to this exact origin (no Domain, Path=/), but browsers accept it
    // only with Secure, so a plain-http self-host uses an ordinary name.
    this.cookieName = this.secure ? '__Host-sc_session' : 'sc_session';
  }

  /** The installation's session secret (also the cookie plugin's signing key). */
  setSecret(secret: string): void {
    this.csrfKey = createHmac('sha256', secret).update('sensorcloud csrf key').digest();
  }

  /**
   * The session of this request, if its cookie is present and correctly signed. Whether it is
   * still signed in is `user()`'s question: an ended sign-in keeps its nonce, so forms rendered
   * before it ended still pass the CSRF check and lead to the login page instead of an error.
   */
  read(request: FastifyRequest): BrowserSession | null {
    const rawCookie = request.cookies[this.cookieName];
    if (!rawCookie) return null;
    const unsigned = request.unsignCookie(rawCookie);
    if (!unsigned.valid || unsigned.value === null) return null;
    const [version, nonce, id] = unsigned.value.split('.');
    if (version !== VERSION || !nonce || nonce.length < 16) return null;
    return { nonce, id: id?.startsWith(SESSION_ID_PREFIX) ? id : null };
  }

  /** The current session, or a new anonymous one (its cookie set on the reply). */
  ensure(request: FastifyRequest, reply: FastifyReply): BrowserSession {
    const existing = this.read(request);
    if (existing) return existing;
    const session: BrowserSession = { nonce: newNonce(), id: null };
    this.write(reply, session);
    return session;
  }

  /** The signed-in user, while the session's row exists, has not expired and the user is active. */
  async user(session: BrowserSession | null): Promise<User | undefined> {
    if (!session?.id) return undefined;
    return findBrowserSessionUser(this.db, sha256(session.id));
  }

  /**
   * Signs the user in with a new session id and nonce (no session fixation; earlier CSRF tokens
   * die), ending the browser's previous sign-in.
   */
  async signIn(previous: BrowserSession, reply: FastifyReply, userId: string): Promise<BrowserSession> {
    if (previous.id) await deleteBrowserSession(this.db, sha256(previous.id));
    const session: BrowserSession = { nonce: newNonce(), id: generateToken(SESSION_ID_PREFIX) };
    await insertBrowserSession(this.db, sha256(session.id!), userId, SESSION_LIFETIME_MS / 1000);
    this.write(reply, session);
    return session;
  }

  /** Ends the sign-in everywhere, keeping an anonymous session (with a new nonce) so the next form works. */
  async signOut(previous: BrowserSession, reply: FastifyReply): Promise<BrowserSession> {
    if (previous.id) await deleteBrowserSession(this.db, sha256(previous.id));
    const session: BrowserSession = { nonce: newNonce(), id: null };
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
    const value = session.id ? [VERSION, session.nonce, session.id].join('.') : [VERSION, session.nonce].join('.');
    reply.setCookie(this.cookieName, value, {
      signed: true,
      httpOnly: true,
      sameSite: 'lax',
      secure: this.secure,
      path: '/',
      // A browser-session cookie; the sign-in itself ends server-side (its row's expires_at).
    });
  }
}

const newNonce = (): string => randomBytes(18).toString('base64url');

/**
 * Sets up browser sessions in an encapsulated context of pages: the cookie plugin, signing with
 * the installation's session secret. The secret lives in the database (shared by every node); it
 * is read on the context's first request, so building the app does not touch storage.
 */
export async function useBrowserSessions(scope: FastifyInstance, db: Db, publicUrl: string): Promise<Sessions> {
  let signer: Signer | undefined;
  let loading: Promise<void> | undefined;
  const sessions = new Sessions(db, publicUrl);
  scope.addHook('onRequest', async () => {
    if (signer) return;
    loading ??= sessionSecret(db).then((secret) => {
      signer = new Signer(secret, 'sha256');
      sessions.setSecret(secret);
    });
    try {
      await loading;
    } catch (error) {
      loading = undefined;
      throw error;
    }
  });
  await scope.register(cookie, {
    secret: {
      sign: (value: string) => signer!.sign(value),
      unsign: (value: string) => signer!.unsign(value),
    },
  });
  return sessions;
}
