/** Small helpers for the SQL of repositories. */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for a syntactically valid UUID; repositories answer "not found" for anything else. */
export const isUuid = (value: unknown): value is string => typeof value === 'string' && UUID.test(value);

/** Escapes `\`, `%` and `_` so a user's text matches literally inside a LIKE/ILIKE pattern. */
export function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** Drops undefined members, so a PATCH touches only what it names. */
export function definedOnly<T extends Record<string, unknown>>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** SQLSTATE 55P03 (lock_not_available): `lock_timeout` ran out before the lock was had. */
export function isLockTimeout(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '55P03';
}
