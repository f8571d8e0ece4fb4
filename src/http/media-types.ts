/**
 * Media types as `Accept` and `Content-Type` carry them (RFC 9110 §8.3.1, §12.5.1): a type, its
 * parameters (names lower-cased, quoted values unquoted) and, in Accept, the weight `q`. Shared by
 * the /v1 negotiation (api/negotiation.ts) and the error renderer (problem.ts), so a request gets
 * its errors in the representation its data would have come in.
 */

export const JSON_API_MEDIA_TYPE = 'application/vnd.api+json';

export interface MediaRange {
  type: string;
  params: Map<string, string>;
  /** Accept weight, 1 unless given; a range with q=0 is one the client refuses. */
  q: number;
}

/** Splits on `separator` outside quoted strings (a profile URI may hold a comma or a semicolon). */
function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (quoted && char === '\\' && i + 1 < text.length) {
      current += char + text[++i];
      continue;
    }
    if (char === '"') quoted = !quoted;
    if (char === separator && !quoted) {
      parts.push(current);
      current = '';
    } else current += char;
  }
  parts.push(current);
  return parts;
}

function parseMediaRange(part: string): MediaRange {
  const [type = '', ...rawParams] = splitOutsideQuotes(part, ';');
  const params = new Map<string, string>();
  let q = 1;
  for (const raw of rawParams) {
    const eq = raw.indexOf('=');
    const name = (eq === -1 ? raw : raw.slice(0, eq)).trim().toLowerCase();
    const value = eq === -1 ? '' : unquote(raw.slice(eq + 1).trim());
    if (name === 'q') {
      const weight = Number(value);
      q = Number.isFinite(weight) ? Math.min(Math.max(weight, 0), 1) : 1;
    } else if (name !== '') params.set(name, value);
  }
  return { type: type.trim().toLowerCase(), params, q };
}

const unquote = (value: string): string =>
  value.startsWith('"') && value.endsWith('"') && value.length >= 2 ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value;

/** The ranges of an Accept header, in order. */
export function parseAccept(header: string): MediaRange[] {
  return splitOutsideQuotes(header, ',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map(parseMediaRange);
}

/** The media type of a Content-Type header; undefined without one. */
export function parseContentType(header: string | undefined): MediaRange | undefined {
  return header === undefined || header.trim() === '' ? undefined : parseMediaRange(header);
}

/** The JSON:API media type instances of an Accept header the client did not refuse (q > 0). */
export function jsonApiInstances(accept: string | undefined): MediaRange[] {
  if (!accept?.toLowerCase().includes(JSON_API_MEDIA_TYPE)) return [];
  return parseAccept(accept).filter((range) => range.type === JSON_API_MEDIA_TYPE && range.q > 0);
}
