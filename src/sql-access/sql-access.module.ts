import type { Module } from '../module.js';
import * as m0019 from './migrations/0019_sql_access.js';
import { registerSqlAccessRoutes } from './sql-access.routes.js';
import { SqlAccessService, sqlAccessSettings } from './sql-access.service.js';

/**
 * SQL access: an organization's read-only PostgreSQL login over the views of schema `reporting`
 * (its table and views: 0019_sql_access), managed by `/v1/sql-access` and `sensorcloud sql-access`.
 */
export const sqlAccessModule: Module = {
  name: 'sql-access',
  migrations: { '0019_sql_access': m0019 },
  register(app, services) {
    const service = new SqlAccessService(services.db, services.databaseKind, sqlAccessSettings(services.config));
    registerSqlAccessRoutes(app, services, service);
  },
};
