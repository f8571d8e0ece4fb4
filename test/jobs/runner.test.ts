import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { JobRunner } from '../../src/jobs/runner.js';
import { type DatabaseHandle, openDatabase } from '../../src/storage/database.js';
import { TEST_DATABASE_URL, backends, useDatabase } from '../support/databases.js';

/** The job runner (issue 12): one run at a time per job across nodes, stopped with the server. */

const silent = { info() {}, warn() {} };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(backends)('job runner ($name)', (backend) => {
  const database = useDatabase(backend);
  const exclusive = backend.name === 'postgres';

  it('runs a job at start and then every interval; stop() waits for the run in progress and ends the turns', async () => {
    const runner = new JobRunner(database.db, exclusive, silent);
    let runs = 0;
    let stoppedInside = false;
    runner.add({
      name: 'tick',
      intervalMs: 40,
      runAtStart: true,
      async run(stopping) {
        runs += 1;
        await sleep(30);
        stoppedInside ||= stopping();
      },
    });
    runner.start();
    await sleep(150);
    expect(runs).toBeGreaterThanOrEqual(2);
    await runner.stop();
    const after = runs;
    await sleep(120);
    expect(runs).toBe(after);
    expect(typeof stoppedInside).toBe('boolean');
  });

  it('a failing run is logged and the next turn runs again; /metrics counts both and when it last succeeded', async () => {
    const warnings: string[] = [];
    const registry = new Registry();
    const runner = new JobRunner(database.db, exclusive, { info() {}, warn: (_details, message) => warnings.push(message) }, registry);
    let runs = 0;
    runner.add({
      name: 'flaky',
      intervalMs: 1_000_000,
      async run() {
        runs += 1;
        if (runs === 1) throw new Error('first run fails');
      },
    });
    expect(await runner.runOnce('flaky')).toBe(false);
    const before = Date.now() / 1000;
    expect(await runner.runOnce('flaky')).toBe(true);
    expect(warnings).toHaveLength(1);
    const outcomes = (await registry.getSingleMetric('job_runs_total')!.get()).values;
    expect(outcomes.map((v) => [v.labels.result, v.value]).sort()).toEqual([
      ['failed', 1],
      ['ran', 1],
    ]);
    const [lastSuccess] = (await registry.getSingleMetric('job_last_success_timestamp_seconds')!.get()).values;
    expect(lastSuccess?.labels.job).toBe('flaky');
    expect(lastSuccess?.value).toBeGreaterThanOrEqual(before);
  });
});

describe.skipIf(!TEST_DATABASE_URL)('job runner across nodes (PostgreSQL)', () => {
  const database = useDatabase(backends.find((b) => b.name === 'postgres')!);

  it('while one node runs a job, the same job on another node skips its turn', async () => {
    // A second node: its own pool on the same database.
    const other: DatabaseHandle = await openDatabase({ databaseUrl: database.current.databaseUrl, poolSize: 2 });
    try {
      const running: string[] = [];
      let overlap = false;
      const job = (node: string) => ({
        name: 'exclusive',
        intervalMs: 1_000_000,
        async run() {
          if (running.length > 0) overlap = true;
          running.push(node);
          await sleep(200);
          running.pop();
        },
      });
      const a = new JobRunner(database.db, true, silent);
      const registry = new Registry();
      const b = new JobRunner(other.db, true, silent, registry);
      a.add(job('a'));
      b.add(job('b'));
      const [ranA, ranB] = await Promise.all([a.runOnce('exclusive'), sleep(50).then(() => b.runOnce('exclusive'))]);
      expect([ranA, ranB]).toEqual([true, false]);
      expect(overlap).toBe(false);
      // Once released, the other node takes its turn.
      expect(await b.runOnce('exclusive')).toBe(true);
      const results = (await registry.getSingleMetric('job_runs_total')!.get()).values.map((v) => [v.labels.result, v.value]);
      expect(results.sort()).toEqual([
        ['ran', 1],
        ['skipped', 1],
      ]);
    } finally {
      await other.close();
    }
  });
});
