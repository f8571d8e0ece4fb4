import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isTimeZone, quietUntil } from '../../src/notifications/quiet-hours.js';
import { unsubscribeToken, verifyUnsubscribeToken } from '../../src/notifications/unsubscribe.js';

describe('quiet hours', () => {
  const night = { start: '22:00', end: '07:00', timezone: 'Europe/Berlin' };

  it('spanning midnight: held until the local end, not held outside', () => {
    // 23:30 in Berlin (CET, UTC+1) → until 07:00 local = 06:00Z the next day.
    expect(quietUntil(night, new Date('2024-01-10T22:30:00Z'))?.toISOString()).toBe('2024-01-11T06:00:00.000Z');
    // 03:15:20 local → 06:00Z the same day.
    expect(quietUntil(night, new Date('2024-01-11T02:15:20Z'))?.toISOString()).toBe('2024-01-11T06:00:00.000Z');
    expect(quietUntil(night, new Date('2024-01-11T06:00:00Z'))).toBeUndefined(); // 07:00 local: over
    expect(quietUntil(night, new Date('2024-01-11T12:00:00Z'))).toBeUndefined();
    // Summer time (CEST, UTC+2).
    expect(quietUntil(night, new Date('2024-07-10T21:00:00Z'))?.toISOString()).toBe('2024-07-11T05:00:00.000Z');
  });

  it('within a day, and an empty window', () => {
    const lunch = { start: '12:00', end: '13:30', timezone: 'UTC' };
    expect(quietUntil(lunch, new Date('2024-01-10T12:45:00Z'))?.toISOString()).toBe('2024-01-10T13:30:00.000Z');
    expect(quietUntil(lunch, new Date('2024-01-10T11:59:00Z'))).toBeUndefined();
    expect(quietUntil({ start: '08:00', end: '08:00', timezone: 'UTC' }, new Date('2024-01-10T08:00:00Z'))).toBeUndefined();
  });

  it('time zones are IANA names', () => {
    expect(isTimeZone('America/New_York')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
  });
});

describe('unsubscribe tokens', () => {
  it('verify for their user only, under their key only', () => {
    const key = randomBytes(32);
    const user = randomUUID();
    const token = unsubscribeToken(key, user);
    expect(verifyUnsubscribeToken(key, token)).toBe(user);
    expect(verifyUnsubscribeToken(randomBytes(32), token)).toBeUndefined();
    expect(verifyUnsubscribeToken(key, token.replace(user, randomUUID()))).toBeUndefined();
    expect(verifyUnsubscribeToken(key, `${token}.x`)).toBeUndefined();
    expect(verifyUnsubscribeToken(key, 'nonsense')).toBeUndefined();
    expect(verifyUnsubscribeToken(key, '')).toBeUndefined();
  });
});
