import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { openDatabase, ping } from '../../src/storage/database.js';
import { migrateToLatest } from '../../src/storage/migrate.js';
import { allMigrations } from '../../src/modules.js';

/**
 * Runs once per `vitest run`, before any test file: creates one empty embedded database (PGlite's
 * initdb is the slow part of opening one, seconds on a busy machine) that test files copy instead
 * of initialising their own. Not migrated, so copies exercise the migrations like a fresh install.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sensorcloud-pglite-template-'));
  const handle = await openDatabase({ dataDir: dir });
  await ping(handle.db);
  await handle.close();
  // And a copy of it with the migrations of this checkout applied, for suites that only need a
  // working database.
  const migrated = await fs.mkdtemp(path.join(os.tmpdir(), 'sensorcloud-pglite-migrated-'));
  await fs.cp(dir, migrated, { recursive: true });
  const migratedHandle = await openDatabase({ dataDir: migrated });
  await migrateToLatest(migratedHandle.db, allMigrations());
  await migratedHandle.close();
  project.provide('pgliteTemplate', dir);
  project.provide('pgliteMigratedTemplate', migrated);
  return async () => {
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rm(migrated, { recursive: true, force: true });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** A data directory holding an initialised, empty embedded database (see global-setup.ts). */
    pgliteTemplate: string;
    /** The same, migrated to the latest schema. */
    pgliteMigratedTemplate: string;
  }
}
