import ms from 'ms';
import { ConfigError } from '../config/env.js';

/**
 * WEBHOOK_RETRY_SCHEDULE (SPEC §8): the delay after each failed attempt, e.g. `5s,30s,2m,…,24h`;
 * an event gets one attempt more than the schedule has delays.
 */
export function parseRetrySchedule(text: string): number[] {
  const delays = text.split(',').map((part) => {
    const delay = ms(part.trim() as ms.StringValue);
    if (!Number.isFinite(delay) || delay < 0 || !/^\d+\s*[a-z]*$/i.test(part.trim())) {
      throw new ConfigError(`WEBHOOK_RETRY_SCHEDULE: "${part.trim()}" is not a delay such as 30s, 2m, 1h or 1d`);
    }
    return delay;
  });
  return delays;
}

/** ±10% jitter, so endpoints that failed together are not retried in lockstep. */
export function withJitter(delayMs: number, random: () => number = Math.random): number {
  return Math.round(delayMs * (0.9 + 0.2 * random()));
}
