import { STATUS_CODES } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { JSON_API_MEDIA_TYPE, jsonApiInstances } from './media-types.js';

/**
 * Errors outside the OAuth endpoints: RFC 9457 problem details by default, JSON:API error objects
 * when the client asked for `application/vnd.api+json`. Routes throw `HttpProblem`; the error
 * handler renders it in whichever format the request wants.
 */

export interface FieldError {
  /** JSON pointer into the request (`/body/email`, `/query/limit`). */
  pointer: string;
  detail: string;
}

export interface ProblemInit {
  status: number;
  detail?: string;
  /** A URI naming the problem type; `about:blank` (the default) means "just the HTTP status". */
  type?: string;
  title?: string;
  errors?: FieldError[];
  headers?: Record<string, string>;
}

export class HttpProblem extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly errors: FieldError[] | undefined;
  readonly headers: Record<string, string>;

  constructor(init: ProblemInit) {
    super(init.detail ?? STATUS_CODES[init.status] ?? 'Error');
    this.status = init.status;
    this.type = init.type ?? 'about:blank';
    this.title = init.title ?? STATUS_CODES[init.status] ?? 'Error';
    this.errors = init.errors;
    this.headers = init.headers ?? {};
  }
}

export const notFound = (detail = 'The resource does not exist.') => new HttpProblem({ status: 404, detail });
export const badRequest = (detail: string, errors?: FieldError[]) => new HttpProblem({ status: 400, detail, ...(errors && { errors }) });
export const conflict = (detail: string) => new HttpProblem({ status: 409, detail });

/**
 * Sends a JSON:API document. As bytes: Fastify appends `; charset=utf-8` to a JSON media type sent
 * as a string, and JSON:API forbids media type parameters other than ext and profile.
 */
export function sendJsonApi(reply: FastifyReply, document: Record<string, unknown>): FastifyReply {
  return reply.type(JSON_API_MEDIA_TYPE).send(Buffer.from(JSON.stringify({ jsonapi: { version: '1.1' }, ...document })));
}

/** Errors come as JSON:API when Accept names it (usable or not: a 406 is a JSON:API error too). */
export function wantsJsonApi(request: FastifyRequest): boolean {
  return jsonApiInstances(request.headers.accept).length > 0;
}

/**
 * Requests whose JSON:API request document was flattened before validation (see
 * api/json-api-body.ts#jsonApiBody): maps a flat body pointer (`/body/name`) back into the
 * document (`/data/attributes/name`), so JSON:API error sources point where the client wrote.
 */
export const jsonApiBodyPointers = new WeakMap<FastifyRequest, (pointer: string) => string>();

export function sendProblem(request: FastifyRequest, reply: FastifyReply, problem: HttpProblem): FastifyReply {
  // Also set here because errors raised before routing never pass the onRequest hook that sets it.
  reply.code(problem.status).headers(problem.headers).header('x-request-id', request.id);
  if (wantsJsonApi(request)) {
    const errors = (problem.errors?.length ? problem.errors : [undefined]).map((fieldError) => {
      const source = fieldError && sourceOf(fieldError.pointer, jsonApiBodyPointers.get(request));
      return {
        id: request.id,
        status: String(problem.status),
        title: problem.title,
        detail: fieldError?.detail ?? problem.message,
        ...(source && { source }),
      };
    });
    return sendJsonApi(reply, { errors });
  }
  return reply.type('application/problem+json').send({
    type: problem.type,
    title: problem.title,
    status: problem.status,
    detail: problem.message,
    instance: request.url.split('?')[0],
    request_id: request.id,
    ...(problem.errors && { errors: problem.errors }),
  });
}

// JSON:API names where an error came from: a body member, a query parameter or a header; a path
// segment has no source member of its own (the detail names it).
function sourceOf(
  pointer: string,
  remap?: (pointer: string) => string,
): { pointer: string } | { parameter: string } | { header: string } | undefined {
  if (pointer.startsWith('/query/')) return { parameter: pointer.slice('/query/'.length) };
  if (pointer.startsWith('/headers/')) return { header: pointer.slice('/headers/'.length) };
  if (pointer.startsWith('/path')) return undefined;
  if (remap && pointer.startsWith('/body')) return { pointer: remap(pointer) };
  return { pointer: pointer.replace(/^\/body/, '') || '/' };
}
