import { type Migration, type MigrationResult, Migrator } from 'kysely';
import type { Db } from './database.js';
import * as m0001 from './migrations/0001_foundation.js';
import * as m0002 from './migrations/0002_oauth.js';
import * as m0004 from './migrations/0004_inventory.js';
import * as m0005 from './migrations/0005_readings.js';
import * as m0006 from './migrations/0006_readings_covering_key.js';
import * as m0007 from './migrations/0007_abuse_counters.js';
import * as m0008 from './migrations/0008_invitations.js';
import * as m0009 from './migrations/0009_browser_sessions.js';

/**
 * The one migration set, for PGlite and PostgreSQL alike. Listed statically (not read from disk)
 * so the compiled server and the test runner see the same set. Kysely's migrator takes a
 * PostgreSQL advisory lock, so several nodes starting at once migrate exactly once.
 */
export const migrations: Record<string, Migration> = {
  '0001_foundation': m0001,
  '0002_oauth': m0002,
  '0004_inventory': m0004,
  '0005_readings': m0005,
  '0006_readings_covering_key': m0006,
  '0007_abuse_counters': m0007,
  '0008_invitations': m0008,
  '0009_browser_sessions': m0009,
};

export class MigrationError extends Error {}

export async function migrateToLatest(db: Db): Promise<MigrationResult[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results = [] } = await migrator.migrateToLatest();
  if (error) {
    const failed = results.find((r) => r.status === 'Error');
    throw new MigrationError(`migration ${failed?.migrationName ?? '?'} failed: ${(error as Error).message ?? error}`, { cause: error });
  }
  return results;
}
