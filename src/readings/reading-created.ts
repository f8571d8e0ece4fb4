import type { EventOutbox } from '../events/outbox.js';
import type { IngestStage } from '../ingest/pipeline.js';
import { readingJson } from './reading-json.js';

/**
 * `reading.created` for every reading a batch stored (not for a resent one), raised in the batch's
 * transaction — only for organizations where a consumer wants them, so that ingest without
 * such subscribers stays the single statement it is.
 */
export function readingCreatedStage(events: EventOutbox): IngestStage {
  return {
    name: 'reading.created',
    appliesTo: (organizationId) => events.wants(organizationId, 'reading.created'),
    async run(tx, written) {
      await events.emit(
        tx,
        written.readings.map((reading) => ({
          organizationId: written.organizationId,
          type: 'reading.created' as const,
          occurredAt: reading.ts,
          data: readingJson(reading, true),
        })),
      );
    },
  };
}
