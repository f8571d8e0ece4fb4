import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findClientByClientId } from '../../src/oauth/clients.repo.js';
import { openDatabase, type DatabaseHandle } from '../../src/storage/database.js';
import { migrateToLatest } from '../../src/storage/migrate.js';
import { preparedStatement } from '../../src/storage/prepared.js';
import { TEST_DATABASE_URL, type ThrowawayDatabase, createThrowawayDatabase } from '../support/databases.js';
import { allMigrations } from '../../src/modules.js';

describe('prepared statements', () => {
  it('refuses select * (a later column would break prepared plans on other nodes)', () => {
    expect(() => preparedStatement('test_star', 'select * from users where id = $1')).toThrow(/must name its columns/);
    expect(() =>
      preparedStatement('test_star_qualified', 'select u.*, m.role from users u join memberships m on m.user_id = u.id'),
    ).toThrow(/must name its columns/);
    expect(() => preparedStatement('test_count', 'select count(*) as n from users')).not.toThrow();
  });

  it('refuses a second declaration of a name or of a text', () => {
    preparedStatement('test_only_statement', 'select 1 as test_only');
    expect(() => preparedStatement('test_only_statement', 'select 2 as test_only')).toThrow(/declared twice/);
    expect(() => preparedStatement('test_only_other', 'select 1 as test_only')).toThrow(/declared twice/);
  });
});

describe.skipIf(!TEST_DATABASE_URL)('prepared statements on PostgreSQL', () => {
  let database: ThrowawayDatabase;
  let handle: DatabaseHandle;
  beforeAll(async () => {
    database = await createThrowawayDatabase();
    // One connection, so the session that prepared the statement is the one asked about it.
    handle = await openDatabase({ databaseUrl: database.url, poolSize: 1 });
    await migrateToLatest(handle.db, allMigrations());
  });
  afterAll(async () => {
    await handle?.close();
    await database?.drop();
  });

  it('a declared statement is prepared once per connection, by name, and answers as before', async () => {
    expect(await findClientByClientId(handle.db, 'nobody')).toBeUndefined();
    expect(await findClientByClientId(handle.db, 'nobody-else')).toBeUndefined();
    const { rows } = await sql<{
      name: string;
      parameter_types: string;
    }>`select name, parameter_types::text from pg_prepared_statements`.execute(handle.db);
    expect(rows).toEqual([{ name: 'find_client_by_client_id', parameter_types: '{text}' }]);
    // Undeclared statements (like the one above) stay unnamed.
  });
});
