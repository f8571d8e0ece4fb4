import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    environment: 'node',
    include: ['test/**/*.test.ts'],
    // One initialised embedded database, copied by every suite that needs a fresh one.
    globalSetup: ['test/support/global-setup.ts'],
    // Each test file runs in its own child process: PGlite (WASM) instances, process.env edits made
    // by CLI tests and stdout spies never leak between files.
    pool: 'forks',
    // Two files at a time (vitest's default on two cores is one): most suites wait on PostgreSQL,
    // argon2id threads or child processes, so the suite takes ~6 instead of ~8 minutes.
    maxWorkers: 2,
    testTimeout: 30_000,
    // Opening PGlite or creating a throwaway PostgreSQL database and migrating it takes a few seconds.
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    // Failing tests must fail CI, never be retried into passing.
    retry: 0,
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
