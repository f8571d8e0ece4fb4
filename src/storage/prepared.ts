import { CompiledQuery } from 'kysely';
import type pg from 'pg';

/**
 * Named prepared statements for the hot paths. On PostgreSQL a statement declared here is parsed
 * and planned once per pooled connection (node-postgres named statements) instead of at every
 * execution: planning the token issuance's three-table insert cost more than running it. PGlite
 * runs in the server's process and is handed the text as usual.
 *
 * A declared statement is recognised by its text, so repositories keep executing it through
 * Kysely (`db.executeQuery(statement.compile(params))`) and transactions work unchanged.
 */
const namesByText = new Map<string, string>();
const names = new Set<string>();

export interface PreparedStatement {
  readonly name: string;
  readonly text: string;
  compile(parameters: readonly unknown[]): CompiledQuery;
}

/** `select *` / `t.*`: a column added by a later migration would break other nodes' prepared plans. */
const STAR_SELECT = /(^|[\s,(])([a-z_][a-z0-9_]*\.)?\*\s*(,|from\b)/i;

export function preparedStatement(name: string, text: string): PreparedStatement {
  // PostgreSQL refuses to run a prepared statement whose result columns changed ("cached plan
  // must not change result type") until the connection prepares it again: during a rolling
  // upgrade, a migration adding a column would break every other node's connections.
  if (STAR_SELECT.test(text)) throw new Error(`prepared statement "${name}" must name its columns, not select *`);
  // One name per text and one text per name: a clash would run the wrong plan.
  if (names.has(name) || namesByText.has(text)) throw new Error(`prepared statement "${name}" is declared twice`);
  names.add(name);
  namesByText.set(text, name);
  return { name, text, compile: (parameters) => CompiledQuery.raw(text, [...parameters]) };
}

/** Makes a pooled node-postgres client send declared statements by name (pool 'connect' hook). */
export function usePreparedStatements(client: pg.ClientBase): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as { query: unknown }).query = (text: unknown, values?: unknown, callback?: unknown) => {
    const name = typeof text === 'string' && Array.isArray(values) ? namesByText.get(text) : undefined;
    return name === undefined ? query(text, values, callback) : query({ name, text, values }, callback);
  };
}
