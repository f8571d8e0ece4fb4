import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { databaseUnavailable } from '../../http/errors.js';
import { HttpProblem } from '../../http/problem.js';
import { InvalidCursorError } from '../../storage/keyset.js';
import { OAuthError } from '../../oauth/errors.js';
import { isDatabaseUnavailable } from '../../storage/availability.js';

/**
 * IoTConnect's response shapes (seeds/004): every answer is JSON carrying its HTTP `status` and a
 * `message`; failures add `error`, a list of what was wrong (`param`: the field or header, when
 * one is to blame), and `data: null`. What the canonical server raises (RFC 6749 errors, RFC 9457
 * problems, database faults) is translated here and only here.
 */

export interface IoTConnectErrorDetail {
  param?: string;
  msg: string;
}

export class IoTConnectError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: IoTConnectErrorDetail[] = [],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function sendIoTConnectError(reply: FastifyReply, error: IoTConnectError): FastifyReply {
  return reply
    .code(error.status)
    .headers(error.headers)
    .header('cache-control', 'no-store')
    .type('application/json; charset=utf-8')
    .send({ data: null, status: error.status, message: error.message, error: error.details });
}

/** The status of an OAuth error as IoTConnect reports it: a refused login is a 401, not RFC 6749's 400. */
function fromOAuth(error: OAuthError): IoTConnectError {
  const status = error.error === 'invalid_grant' || error.error === 'invalid_client' ? 401 : error.status;
  const retry = error.headers['retry-after'];
  return new IoTConnectError(status, error.description, [{ msg: error.error }], retry ? { 'retry-after': retry } : {});
}

export function toIoTConnectError(error: unknown, request: FastifyRequest): IoTConnectError {
  if (error instanceof IoTConnectError) return error;
  if (error instanceof OAuthError) return fromOAuth(error);
  if (error instanceof InvalidCursorError) return new IoTConnectError(400, error.message, [{ param: 'cursor', msg: error.detail }]);
  if (error instanceof HttpProblem) {
    const details = error.errors?.map((e) => ({ param: e.pointer.split('/').pop() ?? e.pointer, msg: e.detail })) ?? [];
    return new IoTConnectError(error.status, error.message, details, error.headers);
  }
  if (isDatabaseUnavailable(error)) {
    const problem = databaseUnavailable(request, error);
    return new IoTConnectError(503, problem.message, [], problem.headers);
  }
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const details = fastifyError.validation.map((v) => ({
      param: (v.params as { missingProperty?: string }).missingProperty ?? v.instancePath.replace(/^\//, ''),
      msg: v.message ?? 'is not valid',
    }));
    return new IoTConnectError(400, `The request is not valid: ${fastifyError.message}`, details);
  }
  const status = fastifyError.statusCode ?? 500;
  if (status >= 400 && status < 500) return new IoTConnectError(status, `The request is not valid: ${fastifyError.message}`);
  request.log.error({ err: error }, 'IoTConnect request failed');
  return new IoTConnectError(500, 'An unexpected error occurred; it has been logged.');
}

/** A HATEOAS link as IoTConnect's (PayPal-style) documents show them. */
export interface Link {
  href: string;
  rel: string;
  method: 'GET' | 'POST';
}
