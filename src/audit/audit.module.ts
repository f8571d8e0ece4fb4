import type { Module } from '../module.js';
import { registerAuditRoutes } from './audit.routes.js';
import * as m0015 from './migrations/0015_audit_events.js';
import * as m0017 from './migrations/0017_audit_event_filters.js';
import { auditRetentionJob } from './retention.js';

/**
 * The audit log: its table, `/v1/audit-events` for admins, and its retention (AUDIT_RETENTION_DAYS,
 * purged hourly by a job). Capabilities record entries with `recordAuditEvent` (audit.repo.ts) in
 * the transaction of each change, with the actions listed in actions.ts.
 */
export const auditModule: Module = {
  name: 'audit',
  migrations: { '0015_audit_events': m0015, '0017_audit_event_filters': m0017 },
  register(app, services) {
    registerAuditRoutes(app, services);
    services.jobs.add(auditRetentionJob(services.db, services.config.env.AUDIT_RETENTION_DAYS, app.log));
  },
};
