import type { ScalingPoint } from './inventory.schema.js';

/**
 * Raw value → engineering value. Linear: `raw * scale + offset`. Piecewise-linear: linear
 * interpolation between the two points around `raw` (points sorted by raw); outside the points,
 * the first or last segment is extended. The calibration offset is added after scaling.
 */
export type Scaling =
  | { kind: 'linear'; scale: number; offset: number }
  | { kind: 'piecewise_linear'; points: readonly ScalingPoint[] }
  | null;

export function scaleValue(scaling: Scaling, raw: number): number {
  if (!scaling) return raw;
  if (scaling.kind === 'linear') return raw * scaling.scale + scaling.offset;
  const points = scaling.points;
  if (points.length === 0) return raw;
  if (points.length === 1) return points[0]!.value;
  let i = 0;
  // The segment [points[i], points[i+1]] that contains raw (or the nearest end segment).
  while (i < points.length - 2 && raw > points[i + 1]!.raw) i++;
  const a = points[i]!;
  const b = points[i + 1]!;
  if (b.raw === a.raw) return a.value;
  return a.value + ((raw - a.raw) * (b.value - a.value)) / (b.raw - a.raw);
}

/** The value ingest reports: scaled, then calibrated. */
export function reportedValue(scaling: Scaling, calibrationOffset: number, raw: number): number {
  return scaleValue(scaling, raw) + calibrationOffset;
}

/** Why a list of points cannot be a piecewise-linear profile, or undefined when it can. */
export function pointsProblem(points: readonly ScalingPoint[]): string | undefined {
  if (points.length < 2) return 'needs at least two points';
  for (let i = 1; i < points.length; i++) {
    if (!(points[i]!.raw > points[i - 1]!.raw)) return 'raw values must be strictly increasing';
  }
  if (!points.every((p) => Number.isFinite(p.raw) && Number.isFinite(p.value))) return 'values must be finite numbers';
  return undefined;
}
