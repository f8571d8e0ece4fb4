import type { Migration } from 'kysely';
import type { SectionApplier } from './provisioning/section.js';
import type { App } from './server/context.js';
import type { AppServices } from './server/context.js';

/**
 * What a capability gives the server, as much of it as it needs. Every module is listed once, in
 * `modules.ts`; no capability mounts another.
 *
 * - `migrations`: the schema changes it owns, named with their place in the one global sequence
 *   (`0005_readings`); its table types augment `Database` (storage/schema.ts) from its own schema
 *   file.
 * - `provisioning`: its sections of the provisioning file, applied in module order.
 * - `register`: its routes, and what it plugs into the server's seams, all on `services`:
 *   credential resolvers (`bearer.register`), periodic jobs (`jobs.add`), ingest stages and
 *   after-commit effects (`ingest.addStage`, `ingest.afterCommit`), cache invalidations
 *   (`invalidations.on`).
 */
export interface Module {
  name: string;
  migrations?: Record<string, Migration>;
  provisioning?: readonly SectionApplier[];
  register?(app: App, services: AppServices): void | Promise<void>;
}
