import type { Module } from '../module.js';
import * as m0019 from './migrations/0019_sql_access.js';
import { endOverlongWork, isInsufficientPrivilege } from './reporting-roles.js';
import { registerSqlAccessRoutes } from './sql-access.routes.js';
import { SqlAccessService, sqlAccessSettings } from './sql-access.service.js';

/** How late past its timeout a reporting statement can be ended when its session lifted the timeout. */
const WATCHDOG_INTERVAL_MS = 5_000;

interface WatchdogLog {
  info(details: object, message: string): void;
  error(details: object, message: string): void;
}

/**
 * The watchdog's turn: `end` ends what outlived the limits. When the server's role may not end
 * other sessions (no pg_signal_backend), that is said once, as an error naming the privilege, not a
 * failed job every turn; said again only after it has ended something since (the privilege granted
 * meanwhile, then taken away).
 */
export function sqlAccessWatchdog(end: () => Promise<{ cancelled: number; terminated: number }>, log: WatchdogLog): () => Promise<void> {
  let refused = false;
  return async () => {
    let ended: { cancelled: number; terminated: number };
    try {
      ended = await end();
    } catch (error) {
      if (!isInsufficientPrivilege(error)) throw error;
      if (!refused)
        log.error(
          { err: error },
          "reporting logins: work past the statement timeout cannot be ended: the server's PostgreSQL role lacks pg_signal_backend (GRANT pg_signal_backend TO <server role>)",
        );
      refused = true;
      return;
    }
    if (ended.cancelled + ended.terminated === 0) return;
    refused = false;
    log.info(ended, 'reporting logins: work past the statement timeout ended');
  };
}

/**
 * SQL access: an organization's read-only PostgreSQL login over the views of schema `reporting`
 * (its table and views: 0019_sql_access), managed by `/v1/sql-access` and `sensorcloud sql-access`;
 * on PostgreSQL a watchdog job ends the logins' work that outlives the statement timeout.
 */
export const sqlAccessModule: Module = {
  name: 'sql-access',
  migrations: { '0019_sql_access': m0019 },
  register(app, services) {
    const service = new SqlAccessService(services.db, services.databaseKind, sqlAccessSettings(services.config));
    registerSqlAccessRoutes(app, services, service);
    if (services.databaseKind === 'postgres') {
      const timeoutSeconds = services.config.env.SQL_ACCESS_STATEMENT_TIMEOUT;
      services.jobs.add({
        name: 'sql-access-watchdog',
        intervalMs: WATCHDOG_INTERVAL_MS,
        run: sqlAccessWatchdog(() => endOverlongWork(services.db, timeoutSeconds), app.log),
      });
    }
  },
};
