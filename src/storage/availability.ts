/**
 * Whether an error means "the database cannot be reached right now" (a restart, a failover, an
 * administrator terminating connections, the connection limit) rather than "this request is
 * wrong". Such errors are answered 503 with Retry-After by every error handler, and the node
 * recovers on its own: the pool drops broken connections and opens new ones on demand.
 */

/** Seconds a client is asked to wait before retrying a request refused for this reason. */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

// SQLSTATE class 08 (connection exception) and the operator-intervention codes of class 57
// (admin_shutdown, crash_shutdown, cannot_connect_now), plus too_many_connections.
const UNAVAILABLE_SQLSTATES = /^(08...|57P0[123]|53300)$/;
const UNAVAILABLE_SYSCALL_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  // Node's own codes for a write to a socket that is already gone.
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_WRITE_AFTER_END',
  'ERR_SOCKET_CLOSED',
]);
// node-postgres reports a lost or unobtainable connection with these messages and no code.
const UNAVAILABLE_MESSAGES =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error and is not queryable|Client was closed and is not queryable|Connection ended unexpectedly)/;

/** A store beside the database (Redis) could not be reached; answered like the database being away. */
export class BackingStoreUnavailable extends Error {
  constructor(store: string, cause: unknown) {
    super(`${store} is unavailable: ${(cause as Error)?.message ?? cause}`, { cause });
    this.name = 'BackingStoreUnavailable';
  }
}

export function isDatabaseUnavailable(error: unknown): boolean {
  if (error instanceof BackingStoreUnavailable) return true;
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATES.test(code) || UNAVAILABLE_SYSCALL_CODES.has(code))) return true;
  if (typeof message === 'string' && UNAVAILABLE_MESSAGES.test(message)) return true;
  // AggregateError (a connection attempt to several addresses) and wrapped causes.
  const nested = error as { errors?: unknown; cause?: unknown };
  if (Array.isArray(nested.errors) && nested.errors.some(isDatabaseUnavailable)) return true;
  return nested.cause !== undefined && nested.cause !== error && isDatabaseUnavailable(nested.cause);
}
