import { type Migration, type MigrationResult, Migrator } from 'kysely';
import type { Db } from './database.js';

/**
 * The one migration set, for PGlite and PostgreSQL alike, composed from every module's own
 * migrations (`modules.ts#allMigrations`): each is named with its place in one global sequence
 * (`0005_readings`), and Kysely applies them in name order. Listed statically (not read from
 * disk) so the compiled server and the test runner see the same set. Kysely's migrator takes a
 * PostgreSQL advisory lock, so several nodes starting at once migrate exactly once.
 */

export class MigrationError extends Error {}

export async function migrateToLatest(db: Db, migrations: Record<string, Migration>): Promise<MigrationResult[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results = [] } = await migrator.migrateToLatest();
  if (error) {
    const failed = results.find((r) => r.status === 'Error');
    throw new MigrationError(`migration ${failed?.migrationName ?? '?'} failed: ${(error as Error).message ?? error}`, { cause: error });
  }
  return results;
}
