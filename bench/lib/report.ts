import type { LoadResult } from './load-types.js';
import type { CpuSplit } from './proc.js';
import { median } from './stats.js';

export interface Summary {
  /** Median over runs of the scenario's unit rate (req/s, or readings/s for ingest). */
  rate: number;
  /** Medians over runs of each run's p50 / p99 latency, ms. */
  p50: number;
  p99: number;
  runs: number;
  /** Non-2xx answers or errors seen in the measured runs (a run with many is not trustworthy). */
  failures: number;
  /** Median over runs of where the machine's CPU went (cores). */
  cpu?: CpuSplit;
}

export interface Measured {
  name: string;
  summary: Summary;
  runs: LoadResult[];
  /** Resident memory of the server while this scenario ran (peak, MiB); sensorcloud only. */
  rssPeakMiB?: number;
}

export interface ScenarioResult {
  id: string;
  title: string;
  unit: string;
  kind: 'throughput' | 'latency';
  connections: number;
  target: string;
  sensorcloud: Measured | { unavailable: string };
  reference: Measured | { unavailable: string } | undefined;
  /** sensorcloud rate / reference rate. */
  ratio: number | undefined;
  met: boolean | undefined;
  note?: string;
}

export function summarize(runs: LoadResult[], multiplier = 1): Summary {
  return {
    rate: median(runs.map((r) => r.rps * multiplier)),
    p50: median(runs.map((r) => r.latency.p50)),
    p99: median(runs.map((r) => r.latency.p99)),
    runs: runs.length,
    failures: runs.reduce((n, r) => n + r.non2xx + r.errors + r.timeouts, 0),
    ...(runs.every((r) => r.cpu) && {
      cpu: {
        machine: median(runs.map((r) => r.cpu!.machine)),
        server: median(runs.map((r) => r.cpu!.server)),
        postgres: median(runs.map((r) => r.cpu!.postgres)),
        load: median(runs.map((r) => r.cpu!.load)),
        other: median(runs.map((r) => r.cpu!.other)),
      },
    }),
  };
}

export const CPU_HEADER = [
  'scenario',
  'system',
  'machine busy',
  'server',
  'PostgreSQL',
  'load generator',
  'other',
  'CPU µs / op (server + PostgreSQL)',
  'CPU-cost ratio',
];

/**
 * Where the CPU of this 2-core machine went while each system was measured (median of runs), and
 * what one operation costs the system under test in CPU (server + its PostgreSQL backends; for a
 * reference without a server, its load generator). The CPU-cost ratio (reference cost ÷
 * sensorcloud cost) is what the throughput ratio tends to on a machine both have to themselves:
 * it does not move when other users of this shared host take cores away during one run.
 */
export function cpuRows(results: ScenarioResult[]): string[][] {
  const out: string[][] = [];
  const f = (v: number) => v.toFixed(2);
  for (const r of results) {
    let scPerOp = Number.NaN;
    for (const m of [r.sensorcloud, r.reference]) {
      if (!isMeasured(m) || !m.summary.cpu) continue;
      const c = m.summary.cpu;
      // Without a server process (raw COPY, raw argon2id) the load generator is the system measured.
      const system = c.server > 0 ? c.server + c.postgres : c.load + c.postgres;
      const ops = m.summary.rate / (r.unit === 'readings/s' ? 1000 : 1);
      const perOp = ops > 0 ? (1e6 * system) / ops : Number.NaN;
      const ratio = m === r.reference && scPerOp > 0 ? `${(perOp / scPerOp).toFixed(2)}×` : '';
      if (m === r.sensorcloud) scPerOp = perOp;
      out.push([
        r.title,
        m.name,
        f(c.machine),
        f(c.server),
        f(c.postgres),
        f(c.load),
        f(c.other),
        Number.isFinite(perOp) ? perOp.toFixed(0) : '—',
        ratio,
      ]);
    }
  }
  return out;
}

export function isMeasured(m: Measured | { unavailable: string } | undefined): m is Measured {
  return m !== undefined && 'summary' in m;
}

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function fmtRate(rate: number, unit: string): string {
  return Number.isFinite(rate) ? `${int.format(rate)} ${unit}` : 'n/a';
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  return ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0);
}

function cell(m: Measured | { unavailable: string } | undefined, unit: string, kind: 'throughput' | 'latency', withName: boolean): string {
  if (m === undefined) return '—';
  if (!isMeasured(m)) return `n/a (${m.unavailable})`;
  const s = m.summary;
  const name = withName ? `${m.name}: ` : '';
  const failures = s.failures > 0 ? ` [${s.failures} failed]` : '';
  if (kind === 'latency') {
    const pages = m.runs.map((r) => r.pages).filter((p) => p !== undefined);
    const perPage = pages.length
      ? `; ${median(pages.map((p) => p.perOperation)).toFixed(0)} pages, p50 ${fmtMs(median(pages.map((p) => p.latency.p50)))} ms/page`
      : '';
    return `${name}p50 ${fmtMs(s.p50)} ms · p99 ${fmtMs(s.p99)} ms (${fmtRate(s.rate, unit)}${perPage})${failures}`;
  }
  return `${name}${fmtRate(s.rate, unit)} · p50 ${fmtMs(s.p50)} · p99 ${fmtMs(s.p99)} ms${failures}`;
}

export function rows(results: ScenarioResult[]): string[][] {
  return results.map((r) => [
    `${r.title} (${r.connections} conn)`,
    cell(r.sensorcloud, r.unit, r.kind, false),
    cell(r.reference, r.unit, r.kind, true),
    r.ratio === undefined ? '—' : `${r.ratio.toFixed(2)}×`,
    r.target,
    r.met === undefined ? 'n/a' : r.met ? 'yes' : 'NO',
  ]);
}

export const HEADER = ['scenario', 'sensorcloud (median of runs)', 'reference', 'ratio', 'target', 'met?'];

export function textTable(header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
}

export function markdownTable(header: string[], body: string[][]): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  return [
    `| ${header.map(esc).join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...body.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}
