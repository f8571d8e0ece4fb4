import type { FastifyRequest } from 'fastify';
import type { Page } from '../storage/keyset.js';

/** Links of `/v1` documents: every link absolute from `config.publicUrl`. */

/** The absolute URL of a path on this server (publicUrl + path). */
export function absoluteUrl(publicUrl: string, pathAndQuery: string): string {
  return publicUrl.replace(/\/$/, '') + (pathAndQuery.startsWith('/') ? pathAndQuery : `/${pathAndQuery}`);
}

/** The request's own URL, absolute, optionally with query parameters replaced or removed. */
export function requestUrl(publicUrl: string, request: FastifyRequest, replace: Record<string, string | undefined> = {}): string {
  const url = new URL(request.url, 'http://placeholder');
  for (const [name, value] of Object.entries(replace)) {
    if (value === undefined) url.searchParams.delete(name);
    else url.searchParams.set(name, value);
  }
  const query = url.searchParams.toString();
  return absoluteUrl(publicUrl, url.pathname + (query ? `?${query}` : ''));
}

/** `links` of a page: `self` (the request) and `next` (the request with the page's cursor) when there is more. */
export function pageLinks(
  publicUrl: string,
  request: FastifyRequest,
  page: Page<unknown>,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    self: requestUrl(publicUrl, request),
    ...(page.nextCursor && { next: requestUrl(publicUrl, request, { cursor: page.nextCursor, 'page[after]': undefined }) }),
    ...extra,
  };
}
