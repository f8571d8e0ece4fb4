import { describe, expect, it } from 'vitest';
import type { Db } from '../../src/storage/database.js';
import { ReadReplica } from '../../src/storage/read-replica.js';

/**
 * Which database a read goes to, with stand-ins for the two (the real replica, its outage and its
 * return are test/readings/read-replica.e2e.test.ts).
 */

const primary = { name: 'primary' } as unknown as Db;
const replica = { name: 'replica' } as unknown as Db;
const nameOf = (db: Db) => (db as unknown as { name: string }).name;

function withLog() {
  const warnings: string[] = [];
  const log = { warn: (_details: object, message: string) => warnings.push(message), info: () => {} };
  return { warnings, log };
}

const failing = (error: object) => async (db: Db) => {
  if (db === replica) throw error;
  return nameOf(db);
};

describe('ReadReplica', () => {
  it('reads from the primary when there is no replica, else from the replica', async () => {
    const { log } = withLog();
    expect(await new ReadReplica(primary, undefined, log).read(async (db) => nameOf(db))).toBe('primary');
    expect(await new ReadReplica(primary, replica, log).read(async (db) => nameOf(db))).toBe('replica');
  });

  it('runs a read cancelled by a recovery conflict again on the primary, and keeps using the replica', async () => {
    const { log, warnings } = withLog();
    const reads = new ReadReplica(primary, replica, log);
    const conflict = Object.assign(new Error('canceling statement due to conflict with recovery'), { code: '40001' });
    expect(await reads.read(failing(conflict))).toBe('primary');
    expect(await reads.read(async (db) => nameOf(db))).toBe('replica');
    expect(warnings).toEqual([]);
  });

  it('leaves an unreachable replica out, warning once', async () => {
    const { log, warnings } = withLog();
    const reads = new ReadReplica(primary, replica, log);
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.11:5432'), { code: 'ECONNREFUSED' });
    try {
      expect(await reads.read(failing(refused))).toBe('primary');
      expect(await reads.read(async (db) => nameOf(db))).toBe('primary');
      expect(warnings).toHaveLength(1);
    } finally {
      reads.close();
    }
  });

  it("passes on the replica's other errors: a bad query fails on either", async () => {
    const { log } = withLog();
    const reads = new ReadReplica(primary, replica, log);
    const invalid = Object.assign(new Error('invalid input syntax for type uuid'), { code: '22P02' });
    await expect(reads.read(failing(invalid))).rejects.toBe(invalid);
  });
});
