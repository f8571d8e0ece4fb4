/**
 * The Redis the suites that need one use (abuse counters shared through REDIS_URL): set
 * TEST_REDIS_URL (`.ci/run` does, to the machine's Redis); without it those suites are skipped,
 * like the PostgreSQL suites without TEST_DATABASE_URL. Keys are namespaced per installation
 * (database), so suites running at once never see each other's counters.
 */
export const TEST_REDIS_URL: string | undefined = process.env.TEST_REDIS_URL || undefined;
