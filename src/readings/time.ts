/**
 * Parsing of the time values of the readings API: RFC 3339 timestamps and ISO 8601 durations.
 * Timestamps are kept as epoch milliseconds everywhere (readings are stored at millisecond
 * precision), which makes them cheap to compare, to put in cursors and to send to SQL.
 */

// Earliest and latest instants accepted anywhere (years 0001 to 9999, RFC 3339's range).
const MIN_MS = Date.UTC(2000, 0, 1) - 730_119 * 86_400_000; // 0001-01-01T00:00:00Z
const MAX_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** Whether `ms` is a whole millisecond within the instants accepted anywhere (cursors are checked with it). */
export const isTimeInRange = (ms: unknown): ms is number =>
  Number.isSafeInteger(ms) && (ms as number) >= MIN_MS && (ms as number) <= MAX_MS;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Value of the `count` decimal digits at `at`, or -1 if any is not a digit. */
function digits(text: string, at: number, count: number): number {
  let value = 0;
  for (let i = at; i < at + count; i += 1) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/**
 * Epoch milliseconds of an RFC 3339 §5.6 date-time (`2024-05-01T12:00:00Z`,
 * `2024-05-01t12:00:00.123456+02:00`, `T` or space as separator), or undefined when it is not
 * one (impossible dates such as 02-30 included). Fractions beyond milliseconds are truncated; a
 * leap second (:60) counts as the last millisecond of its minute. Hand-written rather than a
 * regular expression and Date.parse: ingest calls it once per reading.
 */
export function parseRfc3339(text: string): number | undefined {
  const length = text.length;
  if (length < 20 || length > 40) return undefined;
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  const hour = digits(text, 11, 2);
  const minute = digits(text, 14, 2);
  const second = digits(text, 17, 2);
  const sep = text.charCodeAt(10);
  if (
    year < 0 ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    hour < 0 ||
    hour > 23 ||
    minute < 0 ||
    minute > 59 ||
    second < 0 ||
    second > 60 ||
    text.charCodeAt(4) !== 45 ||
    text.charCodeAt(7) !== 45 ||
    (sep !== 84 && sep !== 116 && sep !== 32) ||
    text.charCodeAt(13) !== 58 ||
    text.charCodeAt(16) !== 58
  ) {
    return undefined;
  }
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!)) return undefined;
  let i = 19;
  let ms = 0;
  if (text.charCodeAt(i) === 46) {
    i += 1;
    const start = i;
    while (i < length) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      if (i - start < 3) ms = ms * 10 + d;
      i += 1;
    }
    const n = i - start;
    if (n === 0 || n > 9) return undefined;
    if (n === 1) ms *= 100;
    else if (n === 2) ms *= 10;
  }
  let offsetMinutes = 0;
  const zone = text.charCodeAt(i);
  if (zone === 90 || zone === 122) {
    if (i + 1 !== length) return undefined;
  } else if (zone === 43 || zone === 45) {
    if (i + 6 !== length || text.charCodeAt(i + 3) !== 58) return undefined;
    const oh = digits(text, i + 1, 2);
    const om = digits(text, i + 4, 2);
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return undefined;
    offsetMinutes = (zone === 43 ? 1 : -1) * (oh * 60 + om);
  } else {
    return undefined;
  }
  const midnight = daysFromCivil(year, month, day) * 86_400_000;
  const value =
    second === 60
      ? midnight + ((hour * 60 + minute) * 60 + 59) * 1000 + 999 - offsetMinutes * 60_000
      : midnight + ((hour * 60 + minute) * 60 + second) * 1000 + ms - offsetMinutes * 60_000;
  if (value < MIN_MS || value > MAX_MS) return undefined;
  return value;
}

const TWO = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const THREE = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
const DAY_MS = 86_400_000;
let cachedDay = Number.NaN;
let cachedPrefix = '';

/**
 * `Date#toISOString()` of an epoch-millisecond instant (`2024-05-01T12:00:00.000Z`), without a
 * Date per call: consecutive readings mostly share their day, whose `YYYY-MM-DDT` prefix is kept,
 * and the time of day is assembled from small lookup tables. A page of 1,000 readings formats in
 * a fraction of the time.
 */
export function formatTime(ms: number): string {
  if (!(ms >= MIN_MS && ms <= MAX_MS) || !Number.isInteger(ms)) return new Date(ms).toISOString();
  const day = Math.floor(ms / DAY_MS);
  if (day !== cachedDay) {
    cachedDay = day;
    cachedPrefix = new Date(day * DAY_MS).toISOString().slice(0, 11);
  }
  let rest = ms - day * DAY_MS;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  return `${cachedPrefix}${TWO[hours]}:${TWO[minutes]}:${TWO[seconds]}.${THREE[rest - seconds * 1000]}Z`;
}

/** Smallest and largest downsampling interval, in seconds. */
export const MIN_INTERVAL_SECONDS = 1;
export const MAX_INTERVAL_SECONDS = 366 * 86_400;

// ISO 8601 duration without years and months (their length varies, so fixed-width bins cannot
// use them): PnW, or PnDTnHnMnS with any part omitted; seconds may carry a fraction.
const DURATION = /^P(?:(\d+)W|(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:[.,]\d{1,6})?)S)?)?)$/;

export type DurationResult = { ok: true; seconds: number } | { ok: false; problem: string };

/** Parses an ISO 8601 duration (`PT1H`, `P1D`, `PT5M`, `P1W`, `PT0.5S`) into seconds, within bounds. */
export function parseDuration(value: string): DurationResult {
  const text = value.toUpperCase();
  const match = DURATION.exec(text);
  if (!match || text === 'P' || text.endsWith('T')) {
    if (/^P[^T]*\d(Y|M)/.test(text)) {
      return { ok: false, problem: 'years and months are not supported (their length varies); use days or weeks, e.g. P30D' };
    }
    return { ok: false, problem: 'must be an ISO 8601 duration such as PT5M, PT1H or P1D' };
  }
  const [, weeks, days, hours, minutes, seconds] = match;
  const total =
    Number(weeks ?? 0) * 7 * 86_400 +
    Number(days ?? 0) * 86_400 +
    Number(hours ?? 0) * 3600 +
    Number(minutes ?? 0) * 60 +
    Number((seconds ?? '0').replace(',', '.'));
  if (!(total >= MIN_INTERVAL_SECONDS)) return { ok: false, problem: `must be at least PT${MIN_INTERVAL_SECONDS}S` };
  if (total > MAX_INTERVAL_SECONDS) return { ok: false, problem: 'must be at most P366D' };
  return { ok: true, seconds: total };
}
