import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { type FastifyReply, type FastifyRequest, LogController } from 'fastify';

/**
 * Logging that never writes a secret: request lines are logged as path plus query parameter
 * *names* (OAuth clients put secrets and Sensorberg tokens in query strings), and credential
 * headers are redacted.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["solution-key"]',
  'res.headers["set-cookie"]',
];

export function safeUrl(url: string): string {
  const [path, query] = url.split('?', 2);
  if (!query) return path ?? '/';
  const names = [...new URLSearchParams(query).keys()];
  return `${path}?${[...new Set(names)].map((n) => `${n}=…`).join('&')}`;
}

export const requestSerializer = (request: FastifyRequest) => ({
  id: request.id,
  method: request.method,
  url: safeUrl(request.url),
  remoteAddress: request.ip,
});

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Honours a caller's X-Request-Id when it is sane, so ids follow a request across proxies. */
export function requestId(raw: IncomingMessage): string {
  const given = raw.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/**
 * One log line per request, when its response is sent, instead of Fastify's two (`incoming
 * request` + `request completed`, each a synchronous write): method, safe URL (query parameter
 * names only, via requestSerializer), status, response time, and — through the request's child
 * logger — the request id. Every other Fastify log line keeps its default behaviour.
 */
export class OneLineRequestLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    const fields = { req: request, res: { statusCode: reply.statusCode }, responseTime: reply.elapsedTime };
    if (error) reply.log.error({ ...fields, err: error }, 'request errored');
    else reply.log.info(fields, 'request completed');
  }
}
