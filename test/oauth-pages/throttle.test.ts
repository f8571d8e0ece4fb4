import { describe, expect, it } from 'vitest';
import { LOGIN_THROTTLE, Throttle } from '../../src/oauth/authorize/throttle.js';
import { Browser, usePagesServer } from './support.js';

describe('Throttle (fake clock)', () => {
  const setup = () => {
    let now = 1_000_000;
    const throttle = new Throttle(LOGIN_THROTTLE, () => now);
    return { throttle, advance: (ms: number) => (now += ms) };
  };

  it('lets 5 failures of an account through, then backs off exponentially; success clears it', () => {
    const { throttle, advance } = setup();
    for (let i = 0; i < 5; i++) {
      expect(throttle.check('ip1', 'a@x').allowed).toBe(true);
      throttle.failure('ip1', 'a@x');
    }
    const first = throttle.check('ip2', 'a@x');
    expect(first).toMatchObject({ allowed: false, scope: 'account', retryAfterSeconds: 30 });
    expect(throttle.check('ip2', 'b@x').allowed).toBe(true);
    advance(30_000);
    expect(throttle.check('ip2', 'a@x').allowed).toBe(true);
    throttle.failure('ip2', 'a@x');
    expect(throttle.check('ip2', 'a@x')).toMatchObject({ allowed: false, retryAfterSeconds: 60 });
    advance(60_000);
    throttle.success('a@x');
    expect(throttle.check('ip2', 'a@x').allowed).toBe(true);
  });

  it('caps the delay and forgets failures after an hour of quiet', () => {
    const { throttle, advance } = setup();
    for (let i = 0; i < 20; i++) {
      throttle.failure(`ip${i}`, 'a@x');
      advance(1);
    }
    const verdict = throttle.check('ipX', 'a@x');
    expect(verdict.allowed).toBe(false);
    if (!verdict.allowed) expect(verdict.retryAfterSeconds).toBeLessThanOrEqual(15 * 60);
    advance(61 * 60_000);
    throttle.failure('ipX', 'a@x');
    expect(throttle.check('ipX', 'a@x').allowed).toBe(true);
  });

  it('limits failures per IP across accounts within the window', () => {
    const { throttle, advance } = setup();
    for (let i = 0; i < LOGIN_THROTTLE.ipLimit; i++) throttle.failure('ip1', `user${i}@x`);
    expect(throttle.check('ip1', 'fresh@x')).toMatchObject({ allowed: false, scope: 'ip' });
    expect(throttle.check('ip2', 'fresh@x').allowed).toBe(true);
    advance(LOGIN_THROTTLE.ipWindowMs);
    expect(throttle.check('ip1', 'fresh@x').allowed).toBe(true);
  });
});

describe('login form per-IP limit (HTTP)', () => {
  const server = usePagesServer();

  it(`after ${LOGIN_THROTTLE.ipLimit} failures from one address (different accounts), every login from it is 429`, async () => {
    const browser = new Browser(server.url);
    const { forms } = await browser.page('/login');
    const form = forms[0]!;
    for (let i = 0; i < LOGIN_THROTTLE.ipLimit; i++) {
      const response = await browser.submit(form, { email: `guess${i}@acme.test`, password: 'Password1!' });
      expect(response.status).toBe(400);
    }
    const blocked = await browser.submit(form, { email: 'admin@acme.test', password: 'Adm1n-pass-acme' });
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(blocked.headers.get('ratelimit-policy')).toBe(`"login";q=${LOGIN_THROTTLE.ipLimit};w=${LOGIN_THROTTLE.ipWindowMs / 1000}`);
    expect(browser.cookies.has('sc_session')).toBe(true);
    // Not signed in: the account page still asks for a login.
    const account = await browser.page('/account/authorized-applications');
    expect(account.forms.some((f) => 'password' in f.fields)).toBe(true);
  });
});

describe('one per-account budget for the login form and the password grant', () => {
  const server = usePagesServer();

  it('wrong passwords at the token endpoint make the login form wait too', async () => {
    const authorization = `Basic ${Buffer.from('acme-password:acme-password-secret').toString('base64')}`;
    for (let i = 0; i < 5; i++) {
      const response = await fetch(`${server.url}/oauth/token`, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'password', username: 'viewer@acme.test', password: `wrong-${i}` }),
      });
      expect(response.status).toBe(400);
    }
    const browser = new Browser(server.url);
    const { forms } = await browser.page('/login');
    const blocked = await browser.submit(forms[0]!, { email: 'viewer@acme.test', password: 'V1ewer-pass-acme' });
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another account is unaffected.
    const other = await browser.submit(forms[0]!, { email: 'admin@acme.test', password: 'Adm1n-pass-acme' });
    expect(other.status).toBe(303);
  });
});
