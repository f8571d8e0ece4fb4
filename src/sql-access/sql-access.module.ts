import type { Module } from '../module.js';
import * as m0019 from './migrations/0019_sql_access.js';
import { endOverlongWork } from './reporting-roles.js';
import { registerSqlAccessRoutes } from './sql-access.routes.js';
import { SqlAccessService, sqlAccessSettings } from './sql-access.service.js';

/** How late past its timeout a reporting statement can be ended when its session lifted the timeout. */
const WATCHDOG_INTERVAL_MS = 5_000;

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
        async run() {
          const ended = await endOverlongWork(services.db, timeoutSeconds);
          if (ended.cancelled + ended.terminated > 0) app.log.info(ended, 'reporting logins: work past the statement timeout ended');
        },
      });
    }
  },
};
