import mercurius from 'mercurius';
import { HttpProblem } from '../http/problem.js';
import { isDatabaseUnavailable } from '../storage/availability.js';
import { InvalidCursorError } from '../storage/keyset.js';

const { ErrorWithProps } = mercurius;

/**
 * GraphQL errors with the `extensions.code` of SPEC §8: what the shared /v1 code raises (400
 * problems naming a parameter, bad cursors, a database out of reach) becomes BAD_USER_INPUT or
 * SERVICE_UNAVAILABLE; anything else is INTERNAL_SERVER_ERROR, its cause logged, never shown.
 */

export const unauthenticated = (message: string, headers: Record<string, string>) =>
  Object.assign(new ErrorWithProps(message, { code: 'UNAUTHENTICATED' }, 401), { headers });

export const forbidden = (scope: string) =>
  new ErrorWithProps(`This needs the ${scope} scope, which the credential does not hold.`, { code: 'FORBIDDEN', scope }, 403);

export const badUserInput = (message: string, argument?: string) =>
  new ErrorWithProps(message, { code: 'BAD_USER_INPUT', ...(argument && { argument }) }, 400);

/** The shared code's errors, as GraphQL errors. */
export function graphError(error: unknown, log: { error(details: object, message: string): void }): Error {
  if (error instanceof ErrorWithProps) return error;
  if (error instanceof InvalidCursorError) return badUserInput('The cursor is not valid; use pageInfo.endCursor as given.', 'after');
  if (error instanceof HttpProblem && error.status === 400) {
    const parameter = error.errors?.[0]?.pointer.split('/').pop();
    return badUserInput(error.message, parameter === 'cursor' ? 'after' : parameter);
  }
  if (isDatabaseUnavailable(error))
    return new ErrorWithProps('The service is temporarily unavailable; retry later.', { code: 'SERVICE_UNAVAILABLE' }, 503);
  log.error({ err: error }, 'GraphQL resolver failed');
  return new ErrorWithProps('An unexpected error occurred; it has been logged.', { code: 'INTERNAL_SERVER_ERROR' }, 500);
}
