/** Summary statistics written to stats.json and printed by `prepare`. */
import { bucketCount, type BucketScheme } from "./buckets.js";

export interface LengthSummary {
  count: number;
  mean: number;
  min: number;
  max: number;
  p10: number;
  p25: number;
  p50: number;
  p75: number;
  p90: number;
  p95: number;
  p99: number;
}

/** Quantile of sorted values with linear interpolation between order statistics (numpy's default). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function summarize(values: ArrayLike<number>): LengthSummary | null {
  if (values.length === 0) return null;
  const s = Float64Array.from(values).sort();
  let sum = 0;
  for (let i = 0; i < s.length; i++) sum += s[i]!;
  const q = (p: number) => round2(quantileSorted(s, p));
  return {
    count: s.length, mean: round2(sum / s.length), min: s[0]!, max: s[s.length - 1]!,
    p10: q(0.1), p25: q(0.25), p50: q(0.5), p75: q(0.75), p90: q(0.9), p95: q(0.95), p99: q(0.99),
  };
}

export function histogram(buckets: ArrayLike<number>, scheme: BucketScheme): number[] {
  const h = new Array<number>(bucketCount(scheme)).fill(0);
  for (let i = 0; i < buckets.length; i++) h[buckets[i]!]!++;
  return h;
}

/** Index of the largest count (lowest index on ties). */
export function argmax(counts: number[]): number {
  let best = 0;
  for (let i = 1; i < counts.length; i++) if (counts[i]! > counts[best]!) best = i;
  return best;
}

/** Accuracy of always predicting `bucket` on data with histogram `counts`; null for an empty split. */
export function constantAccuracy(counts: number[], bucket: number): number | null {
  const n = counts.reduce((a, b) => a + b, 0);
  return n === 0 ? null : counts[bucket]! / n;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
