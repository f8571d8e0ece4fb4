import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import FindMyWay from 'find-my-way';
import { UNAVAILABLE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '../storage/availability.js';
import { InvalidCursorError } from '../storage/keyset.js';
import { isCorsPreflight } from './cors.js';
import { type FieldError, HttpProblem, badRequest, sendProblem } from './problem.js';

interface AjvIssue {
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

const CONTEXT_POINTER: Record<string, string> = { body: '/body', querystring: '/query', params: '/path', headers: '/headers' };

/** Turns Ajv's validation output into field errors that name the field (`/body/email`). */
export function fieldErrors(context: string | undefined, issues: readonly AjvIssue[]): FieldError[] {
  const base = CONTEXT_POINTER[context ?? 'body'] ?? '/body';
  return issues.map((issue) => {
    const missing = issue.params?.missingProperty ?? issue.params?.additionalProperty;
    const pointer = base + (issue.instancePath ?? '') + (typeof missing === 'string' ? `/${missing}` : '');
    const field = pointer.split('/').slice(2).join('.') || base.slice(1);
    const detail = issue.params?.additionalProperty ? `${field} is not a known property` : `${field} ${issue.message ?? 'is invalid'}`;
    return { pointer, detail };
  });
}

/** Maps whatever a route or Fastify threw to a problem; only the unexpected becomes a 500. */
export function toProblem(error: FastifyError & { validationContext?: string }, request: FastifyRequest): HttpProblem {
  if (error instanceof HttpProblem) return error;
  if (error instanceof InvalidCursorError) return badRequest(error.message, [{ pointer: error.pointer, detail: error.detail }]);
  if (error.validation) {
    const errors = fieldErrors(error.validationContext, error.validation as AjvIssue[]);
    return new HttpProblem({ status: 400, detail: errors.map((e) => e.detail).join('; '), errors });
  }
  if (isDatabaseUnavailable(error)) return databaseUnavailable(request, error);
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    const headers: Record<string, string> = {};
    if (status === 415) headers['accept-post'] = 'application/json';
    return new HttpProblem({ status, detail: error.message, headers });
  }
  request.log.error({ err: error }, 'request failed');
  return new HttpProblem({
    status: status >= 500 && status < 600 ? status : 500,
    detail: 'An unexpected error occurred; it has been logged.',
  });
}

/** 503 with Retry-After: the request was fine, the database is away for a moment (a restart, a failover). */
export function databaseUnavailable(request: FastifyRequest, error: unknown): HttpProblem {
  request.log.warn({ err: error }, 'database unavailable');
  return new HttpProblem({
    status: 503,
    detail:
      'The service is temporarily unavailable (its database cannot be reached). Retry the request later; nothing of it was kept unless it was answered.',
    headers: { 'retry-after': String(UNAVAILABLE_RETRY_AFTER_SECONDS) },
  });
}

/**
 * Errors Fastify raises before routing, outside every hook and handler (a malformed URL, an
 * over-long path parameter): without this they would be Fastify's own plain JSON.
 */
export function handleFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  void sendProblem(request, reply, toProblem(error, request));
}

/**
 * Requests Node's HTTP parser rejects before Fastify sees them (an unknown method, broken framing,
 * headers too large, a client too slow): the same problem document, written to the socket.
 */
export function handleClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const status = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
  const detail =
    status === 408
      ? 'The request was not received in time.'
      : status === 431
        ? 'The request headers are too large.'
        : 'The request is not valid HTTP.';
  const id = randomUUID();
  const title = STATUS_CODES[status] ?? 'Error';
  const body = JSON.stringify({ type: 'about:blank', title, status, detail, request_id: id });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${title}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${id}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/**
 * How a family of endpoints that does not speak problem+json (OAuth: RFC 6749 JSON) answers 405,
 * and 404 too when it owns every path under its prefixes (a vendor profile's `/api/`).
 */
export type WrongMethodRenderer = (request: FastifyRequest, reply: FastifyReply, detail: string) => FastifyReply;
interface UnroutedFormat {
  prefixes: readonly string[];
  render: WrongMethodRenderer;
  notFound: boolean;
}
const wrongMethodFormats = new WeakMap<FastifyInstance, UnroutedFormat[]>();

/**
 * Fastify has one not-found handler per prefix and the root one is ours, so a capability with its
 * own error format registers it here for its paths.
 */
export function renderWrongMethodAs(
  app: FastifyInstance,
  prefixes: readonly string[],
  render: WrongMethodRenderer,
  options: { notFound?: boolean } = {},
): void {
  const formats = wrongMethodFormats.get(app) ?? [];
  formats.push({ prefixes, render, notFound: options.notFound ?? false });
  wrongMethodFormats.set(app, formats);
}

/**
 * Installs problem+json error and not-found handling. Unknown paths are 404; a known path with a
 * wrong method is 405 with `Allow`, found by replaying the route table into a second router.
 */
export function installErrorHandling(app: FastifyInstance): void {
  const known = FindMyWay({ ignoreTrailingSlash: true, ignoreDuplicateSlashes: true });
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      // '*' is the CORS preflight catch-all; it makes no path "known".
      if (route.url === '*' || route.url === '/*') continue;
      try {
        known.on(method as 'GET', route.url, () => {});
      } catch {
        // Same method and path registered twice (e.g. HEAD added by Fastify): already known.
      }
    }
  });

  // A body that fails to parse on a path or method with no route is not the client's real
  // mistake: the missing route is, so it is answered as 404/405 below.
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) =>
    request.is404 ? answerUnrouted(request, reply) : sendProblem(request, reply, toProblem(error, request)),
  );

  const allowedMethods = (path: string): string[] => {
    const allowed: string[] = METHODS.filter((m) => known.find(m, path) !== null);
    // Every known path answers OPTIONS (below, or as a CORS preflight).
    if (allowed.length > 0 && !allowed.includes('OPTIONS')) allowed.push('OPTIONS');
    return allowed;
  };

  // A plain OPTIONS (RFC 9110 §9.3.7), or a preflight to a page (no CORS there, http/cors.ts), not a
  // CORS preflight (@fastify/cors answers those): the methods of the path in Allow, or 404 for an
  // unknown path, instead of the CORS plugin's text/plain "Invalid Preflight Request".
  // (Callback-style hooks here and in the other per-request hooks: on every request an async hook
  // costs a promise and a microtask turn for nothing.)
  app.addHook('onRequest', (request, reply, done) => {
    if (request.method !== 'OPTIONS' || isCorsPreflight(request)) return done();
    if (request.routeOptions.url !== '*' && request.routeOptions.url !== '/*') return done(); // the path has an OPTIONS route of its own
    const path = request.url.split('?')[0] ?? '/';
    const allowed = allowedMethods(path);
    // Answered here: the hook chain stops (done is not called).
    if (allowed.length === 0)
      sendProblem(request, reply, new HttpProblem({ status: 404, detail: `No route matches ${request.method} ${path}.` }));
    else reply.code(204).header('allow', allowed.join(', ')).header('x-request-id', request.id).send();
  });

  const answerUnrouted = (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0] ?? '/';
    const allowed = allowedMethods(path);
    const format = wrongMethodFormats.get(app)?.find((f) => f.prefixes.some((prefix) => path.startsWith(prefix)));
    if (allowed.length > 0) {
      const detail = `${request.method} is not allowed on ${path}.`;
      if (format) return format.render(request, reply.code(405).header('allow', allowed.join(', ')), detail);
      return sendProblem(request, reply, new HttpProblem({ status: 405, detail, headers: { allow: allowed.join(', ') } }));
    }
    const detail = `No route matches ${request.method} ${path}.`;
    if (format?.notFound) return format.render(request, reply.code(404), detail);
    return sendProblem(request, reply, new HttpProblem({ status: 404, detail }));
  };
  app.setNotFoundHandler(answerUnrouted);
}
