/**
 * Quiet hours: a daily local time window (`22:00`–`07:00` in an IANA time zone, may span
 * midnight) during which non-critical notifications wait.
 */

export interface QuietHours {
  start: string;
  end: string;
  timezone: string;
}

export const TIME_OF_DAY = '^([01][0-9]|2[0-3]):[0-5][0-9]$';

export function isTimeZone(timezone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
}

const minutesOf = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** Minutes since local midnight (and seconds into the minute) at `now` in `timezone`. */
function localTime(now: Date, timezone: string): { minutes: number; seconds: number } {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone: timezone,
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(now);
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  return { minutes: get('hour') * 60 + get('minute'), seconds: get('second') };
}

/**
 * When the quiet hours holding a notification at `now` end, or undefined when `now` is outside
 * them (an empty window, start = end, is never quiet). Local-clock arithmetic: on the night a
 * clock changes the end may come an hour early or late.
 */
export function quietUntil(quiet: QuietHours, now: Date): Date | undefined {
  const start = minutesOf(quiet.start);
  const end = minutesOf(quiet.end);
  if (start === end) return undefined;
  const { minutes, seconds } = localTime(now, quiet.timezone);
  const inside = start < end ? minutes >= start && minutes < end : minutes >= start || minutes < end;
  if (!inside) return undefined;
  const untilEnd = (end - minutes + 1440) % 1440;
  return new Date(now.getTime() + (untilEnd * 60 - seconds) * 1000);
}
