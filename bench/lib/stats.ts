import type { LatencyStats, LoadResult } from './load-types.js';

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
}

export function summarize(samples: number[]): LatencyStats {
  const sorted = Float64Array.from(samples).sort();
  const arr = Array.from(sorted);
  const sum = arr.reduce((a, b) => a + b, 0);
  return {
    count: arr.length,
    mean: arr.length ? sum / arr.length : Number.NaN,
    p50: percentile(arr, 50),
    p90: percentile(arr, 90),
    p99: percentile(arr, 99),
    max: arr.length ? arr[arr.length - 1]! : Number.NaN,
  };
}

/** A LoadResult for a reference that times its own operations (raw argon2id, raw COPY). */
export function directLoadResult(latencies: number[], failures: number, elapsedSeconds: number, cpuUsed: NodeJS.CpuUsage): LoadResult {
  const stats = summarize(latencies);
  const rps = latencies.length / elapsedSeconds;
  return {
    duration: elapsedSeconds,
    ok: latencies.length,
    non2xx: failures,
    errors: 0,
    timeouts: 0,
    statuses: {},
    rps,
    latency: stats,
    autocannon: { p50: stats.p50, p99: stats.p99, rpsAverage: rps },
    cpuSeconds: (cpuUsed.user + cpuUsed.system) / 1e6,
  };
}
