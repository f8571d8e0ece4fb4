import { flatResource } from '../api/documents.js';
import type { Job } from '../jobs/runner.js';
import type { AppServices } from '../server/context.js';
import { takeDueCalibrations } from './calibrations.repo.js';
import { CalibrationResource } from './calibrations.routes.js';

/** Calibrations taken per transaction; a run goes on until none is left. */
const BATCH = 200;

/**
 * `calibration.due` when an active calibration's due date arrives: once per due date (a changed
 * due date re-arms it), each marked raised in the transaction that emits its event.
 */
export function calibrationsDueJob(services: AppServices): Job {
  return {
    name: 'calibrations-due',
    intervalMs: services.config.env.ALARM_CHECK_INTERVAL * 1000,
    runAtStart: true,
    async run(stopping) {
      while (!stopping()) {
        const raised = await services.db.transaction().execute(async (tx) => {
          const due = await takeDueCalibrations(tx, BATCH);
          await services.events.emit(
            tx,
            due.map((calibration) => ({
              organizationId: calibration.organization_id,
              type: 'calibration.due' as const,
              occurredAt: calibration.due_at!.getTime(),
              data: flatResource(services.config.publicUrl, CalibrationResource, calibration),
            })),
          );
          return due.length;
        });
        if (raised < BATCH) return;
      }
    },
  };
}
