import type { Job, JobLog } from '../jobs/runner.js';
import type { Db } from '../storage/database.js';
import { purgeAuditEvents } from './audit.repo.js';

const DAY_MS = 86_400_000;

/** The audit log's retention as a job of the server's runner: entries older than `retentionDays` go, hourly, in batches. */
export function auditRetentionJob(db: Db, retentionDays: number, log: Pick<JobLog, 'info'>): Job {
  return {
    name: 'audit-retention',
    intervalMs: 3600_000,
    async run(stopping) {
      const purged = await purgeAuditEvents(db, new Date(Date.now() - retentionDays * DAY_MS), stopping);
      if (purged > 0) log.info({ purged, retentionDays }, 'old audit events purged');
    },
  };
}
