import type { Environment } from '../config/env.js';

/**
 * How failures of one kind are answered: `freeFailures` in a row cost nothing; from then on each
 * failure makes the next attempt wait `baseDelayMs · 2^(failures − freeFailures)`, capped at
 * `maxDelayMs` (a back-off, not a lockout: the owner gets in once the wait is over, a guesser gets
 * a handful of tries an hour). A key quiet for `forgetAfterMs` starts again from zero.
 */
export interface FailurePolicy {
  /** Named in `RateLimit-Policy`. */
  name: string;
  freeFailures: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** At least maxDelayMs, so a block never outlives the count behind it. */
  forgetAfterMs: number;
}

/** How long the next attempt must wait after `failures` failures (0: no wait). */
export function delayAfter(policy: FailurePolicy, failures: number): number {
  const over = failures - policy.freeFailures;
  return over < 0 ? 0 : Math.min(policy.baseDelayMs * 2 ** Math.min(over, 30), policy.maxDelayMs);
}

/**
 * The policies of the abuse guard (abuse/guard.ts), from the environment read at start.
 *
 * | variable | default | counts failures of |
 * | --- | --- | --- |
 * | OAUTH_PASSWORD_FREE_FAILURES | 5 | one account's password from one address (password grant and login form together) |
 * | OAUTH_CLIENT_FREE_FAILURES | 10 | one client's secret from one address |
 * | ABUSE_SOURCE_FREE_FAILURES | 30 | every argon2id-checked credential from one address (passwords, client secrets, unknown clients, external tokens) |
 * | ABUSE_BEARER_FREE_FAILURES | 100 | bearer credentials (tokens, API keys, device tokens) from one address |
 * | ABUSE_USER_CODE_FREE_FAILURES | 10 | device user codes typed on /device from one address |
 */
export interface AbusePolicies {
  password: FailurePolicy;
  client: FailurePolicy;
  source: FailurePolicy;
  bearer: FailurePolicy;
  userCode: FailurePolicy;
  /** How long a credential that succeeded from an address keeps that address's budget from applying to it. */
  knownGoodMs: number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

export function abusePolicies(env: Environment): AbusePolicies {
  return {
    password: {
      name: 'password',
      freeFailures: env.OAUTH_PASSWORD_FREE_FAILURES,
      baseDelayMs: 2_000,
      maxDelayMs: 15 * MINUTE,
      forgetAfterMs: HOUR,
    },
    client: {
      name: 'client-secret',
      freeFailures: env.OAUTH_CLIENT_FREE_FAILURES,
      baseDelayMs: 1_000,
      maxDelayMs: 5 * MINUTE,
      forgetAfterMs: HOUR,
    },
    source: {
      name: 'address',
      freeFailures: env.ABUSE_SOURCE_FREE_FAILURES,
      baseDelayMs: 1_000,
      maxDelayMs: 15 * MINUTE,
      forgetAfterMs: HOUR,
    },
    bearer: {
      name: 'bearer',
      freeFailures: env.ABUSE_BEARER_FREE_FAILURES,
      baseDelayMs: 1_000,
      maxDelayMs: 5 * MINUTE,
      forgetAfterMs: 15 * MINUTE,
    },
    userCode: {
      name: 'user-code',
      freeFailures: env.ABUSE_USER_CODE_FREE_FAILURES,
      baseDelayMs: 5_000,
      maxDelayMs: 15 * MINUTE,
      forgetAfterMs: HOUR,
    },
    knownGoodMs: 30 * 24 * HOUR,
  };
}
