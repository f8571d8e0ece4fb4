import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/storage/group-commit.js';

/**
 * Group commit's batching, with a writer that completes within microtasks as the embedded
 * database does (its queries run synchronously): writes submitted by separate callbacks of one
 * turn of the event loop still share a statement.
 */
describe('group commit', () => {
  it('writes submitted by callbacks of one event-loop turn share one statement, even with a synchronous writer', async () => {
    const batches: number[][] = [];
    const commit = new GroupCommit<number>(
      async (items) => {
        batches.push([...items]);
      },
      { maxBatch: 100, maxInFlight: 1 },
    );
    // Ten immediates queued together run in one check phase, each as its own callback (like ten
    // HTTP responses read in one poll phase).
    const written = await Promise.all(
      Array.from(
        { length: 10 },
        (_, n) => new Promise<number>((resolve) => setImmediate(() => void commit.submit(n).then(() => resolve(n)))),
      ),
    );
    expect(written).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(batches).toEqual([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]);
  });

  it('a write alone is flushed in the same turn, and one submitted during a flush joins the next batch', async () => {
    const batches: number[][] = [];
    let release: () => void = () => {};
    const commit = new GroupCommit<number>(
      async (items) => {
        batches.push([...items]);
        if (items.includes(0)) await new Promise<void>((resolve) => (release = resolve));
      },
      { maxBatch: 2, maxInFlight: 1 },
    );
    const first = commit.submit(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toEqual([[0]]);
    const rest = [1, 2, 3].map((n) => commit.submit(n));
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toHaveLength(1); // one statement in flight at a time
    release();
    await Promise.all([first, ...rest]);
    expect(batches).toEqual([[0], [1, 2], [3]]);
  });
});
