import type { Module } from '../module.js';
import * as m0015 from './migrations/0015_audit_events.js';

/**
 * The audit log's table. Capabilities record entries with `recordAuditEvent` (audit.repo.ts) in
 * the transaction of the change; today the automatic disabling of a webhook subscription.
 */
export const auditModule: Module = {
  name: 'audit',
  migrations: { '0015_audit_events': m0015 },
};
