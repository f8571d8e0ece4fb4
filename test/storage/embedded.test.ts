import fs from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/storage/database.js';
import { dataDirWithDatabase, tempDir } from '../support/server.js';

/** What the embedded database is started with; docs/design/embedded-database.md says why. */

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => fs.rm(dir, { recursive: true, force: true })));
});

async function sharedBuffers(dataDir: string): Promise<string> {
  const handle = await openDatabase({ dataDir });
  try {
    const { rows } = await sql<{ shared_buffers: string }>`show shared_buffers`.execute(handle.db);
    return rows[0]!.shared_buffers;
  } finally {
    await handle.close();
  }
}

describe('the embedded database', () => {
  it('runs with a 16 MB buffer pool', async () => {
    const dir = await dataDirWithDatabase({ migrated: false });
    dirs.push(dir);
    expect(await sharedBuffers(dir)).toBe('16MB');
  });

  it('is created in a new data directory, then opened from it', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const handle = await openDatabase({ dataDir: dir });
    try {
      await sql`create table kept (id int)`.execute(handle.db);
      await sql`insert into kept values (7)`.execute(handle.db);
    } finally {
      await handle.close();
    }
    expect(await fs.readFile(path.join(dir, 'pglite', 'PG_VERSION'), 'utf8')).toMatch(/^\d+/);
    const again = await openDatabase({ dataDir: dir });
    try {
      const { rows } = await sql<{ id: number }>`select id from kept`.execute(again.db);
      expect(rows).toEqual([{ id: 7 }]);
    } finally {
      await again.close();
    }
  });
});
