import { type FieldError, HttpProblem } from '../http/problem.js';

/**
 * Turns the database's refusals into 4xx problems, so bad input never surfaces as a 500:
 * unique violations are 409, foreign-key violations 422 naming the field (the referenced row does
 * not exist *in this organization*: composite tenant keys make a foreign id look exactly like a
 * missing one), check violations and malformed values 422.
 */

interface PgError {
  code?: string;
  constraint?: string;
}

export interface ConstraintMessages {
  /** Unique constraint name → message (409). */
  unique?: Record<string, string>;
  /** Foreign key constraint name → the field at fault (422). */
  foreignKey?: Record<string, FieldError>;
  /** Fallback message for unnamed unique violations. */
  conflict?: string;
}

export function translateDbError(error: unknown, messages: ConstraintMessages = {}): unknown {
  const { code, constraint } = (typeof error === 'object' && error !== null ? error : {}) as PgError;
  switch (code) {
    case '23505':
      return new HttpProblem({
        status: 409,
        detail: (constraint && messages.unique?.[constraint]) ?? messages.conflict ?? 'A resource with these values already exists.',
      });
    case '23503': {
      const field = constraint ? messages.foreignKey?.[constraint] : undefined;
      return new HttpProblem({
        status: 422,
        detail: field?.detail ?? 'A referenced resource does not exist.',
        ...(field && { errors: [field] }),
      });
    }
    case '23514':
    case '23502':
      return new HttpProblem({ status: 422, detail: 'The values given are not consistent with each other.' });
    case '22P02':
    case '22003':
    case '22007':
    case '22008':
    case '22023':
      return new HttpProblem({ status: 422, detail: 'A value is malformed or out of range.' });
    default:
      return error;
  }
}

/** Runs a write and rethrows database refusals as problems. */
export async function guarded<T>(run: () => Promise<T>, messages: ConstraintMessages = {}): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw translateDbError(error, messages);
  }
}
