import type { FastifyRequest } from 'fastify';
import type { Params } from './client-auth.js';
import { invalidRequest } from './errors.js';

const MAX_VALUE_LENGTH = 8192;

/**
 * The parameters of an OAuth request: the query string, then the body (form-urlencoded or a JSON
 * object — Sonicu posts JSON), merged. Sensorberg's documented requests put every parameter in
 * the query string. Per RFC 6749 §3.1–3.2, empty values count as absent and a parameter may
 * appear only once (the same value in query and body is tolerated).
 */
export function collectParams(request: FastifyRequest): Params {
  const params: Params = Object.create(null) as Params;
  const add = (source: unknown, where: string) => {
    if (source === undefined || source === null) return;
    if (typeof source !== 'object' || Array.isArray(source))
      throw invalidRequest(`The ${where} must be form-urlencoded parameters or a JSON object.`);
    for (const [name, value] of Object.entries(source as Record<string, unknown>)) {
      let text: string;
      if (typeof value === 'string') text = value;
      else if (typeof value === 'number' || typeof value === 'boolean') text = String(value);
      else if (value === null || value === undefined) continue;
      else if (Array.isArray(value)) throw invalidRequest(`The parameter ${name} must not be repeated.`);
      else throw invalidRequest(`The parameter ${name} must be a string.`);
      if (text === '') continue;
      if (text.length > MAX_VALUE_LENGTH) throw invalidRequest(`The parameter ${name} is too long.`);
      if (Object.hasOwn(params, name) && params[name] !== text)
        throw invalidRequest(`The parameter ${name} was sent more than once with different values.`);
      params[name] = text;
    }
  };
  add(request.query, 'query string');
  add(request.body, 'request body');
  return params;
}
