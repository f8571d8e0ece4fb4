import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { invalidGrant } from '../../src/oauth/errors.js';
import { toIoTConnectError } from '../../src/vendors/iotconnect/responses.js';

/**
 * The statuses IoTConnect's document lists that a live server rarely produces on demand: a
 * database that cannot be reached (503, with Retry-After) and an unexpected fault (500, logged,
 * nothing internal shown), plus the translation of a refused login (RFC 6749's 400 invalid_grant
 * is IoTConnect's 401).
 */
describe('IoTConnect error translation', () => {
  const logged: unknown[] = [];
  const request = { log: { warn: () => {}, error: (details: unknown) => logged.push(details) } } as unknown as FastifyRequest;

  it('a database that cannot be reached is 503 with Retry-After', () => {
    const error = toIoTConnectError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }), request);
    expect(error.status).toBe(503);
    expect(error.headers['retry-after']).toMatch(/^\d+$/);
  });

  it('an unexpected fault is 500, logged, and says nothing of its cause', () => {
    const error = toIoTConnectError(new TypeError('secret internals'), request);
    expect(error.status).toBe(500);
    expect(error.message).not.toContain('secret internals');
    expect(logged).toHaveLength(1);
  });

  it('a refused login is 401', () => {
    expect(toIoTConnectError(invalidGrant('The username or password is incorrect.'), request).status).toBe(401);
  });
});
