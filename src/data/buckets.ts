/**
 * Output-length bucket schemes. A scheme is a list of upper edges: bucket i covers [edge[i-1], edge[i])
 * (edge[-1] = 0) and lengths at or above the last edge fall into the last bucket, as the reference recipe's
 * `min(len // size, n - 1)` does. `upperBound(i)` = edge[i] is what the S³ predictor reserves
 * ((bucket + 1) × bucketSize for uniform buckets). The scheme is saved with prepared data and models so
 * that training and serving reuse it exactly.
 */
import { LenpredError } from "../util/errors.js";

export type BucketKind = "uniform" | "percentile" | "log";

export interface BucketScheme {
  kind: BucketKind;
  /** Strictly increasing upper edges in tokens; length = number of buckets. */
  edges: number[];
}

export function uniformBuckets(maxLength: number, count: number): BucketScheme {
  if (!(Number.isInteger(maxLength) && maxLength > 0)) throw new LenpredError(`max length must be a positive integer, got ${maxLength}`);
  if (!(Number.isInteger(count) && count > 0)) throw new LenpredError(`bucket count must be a positive integer, got ${count}`);
  if (maxLength % count !== 0) throw new LenpredError(`max length ${maxLength} is not a multiple of bucket count ${count}`);
  const size = maxLength / count;
  return { kind: "uniform", edges: Array.from({ length: count }, (_, i) => (i + 1) * size) };
}

/** Geometric edges from `first` up to `maxLength` (fine resolution where most answers are). */
export function logBuckets(maxLength: number, count: number, first = 16): BucketScheme {
  if (count < 1 || maxLength < first) throw new LenpredError(`log buckets need count >= 1 and max length >= ${first}`);
  const edges: number[] = [];
  const ratio = count > 1 ? Math.pow(maxLength / first, 1 / (count - 1)) : 1;
  for (let i = 0; i < count; i++) {
    const e = i === count - 1 ? maxLength : Math.round(first * Math.pow(ratio, i));
    edges.push(Math.max(e, (edges[edges.length - 1] ?? 0) + 1));
  }
  return { kind: "log", edges };
}

/** Edges at equal-mass quantiles of the given (training-split) lengths; duplicates are merged. */
export function percentileBuckets(lengths: ArrayLike<number>, count: number, maxLength: number): BucketScheme {
  if (lengths.length === 0) throw new LenpredError("percentile buckets need at least one length");
  const sorted = Float64Array.from(lengths).sort();
  const edges: number[] = [];
  for (let i = 1; i < count; i++) {
    // Upper edges are exclusive, so the edge is the first length of the next quantile.
    const q = sorted[Math.min(sorted.length - 1, Math.floor((i / count) * sorted.length))]!;
    if (q > (edges[edges.length - 1] ?? 0) && q < maxLength) edges.push(q);
  }
  edges.push(maxLength);
  return { kind: "percentile", edges };
}

export function bucketCount(s: BucketScheme): number {
  return s.edges.length;
}

export function bucketOf(s: BucketScheme, tokens: number): number {
  const e = s.edges;
  for (let i = 0; i < e.length; i++) if (tokens < e[i]!) return i;
  return e.length - 1;
}

export function upperBound(s: BucketScheme, bucket: number): number {
  return s.edges[clampBucket(s, bucket)]!;
}

export function lowerBound(s: BucketScheme, bucket: number): number {
  const b = clampBucket(s, bucket);
  return b === 0 ? 0 : s.edges[b - 1]!;
}

/** Point estimate for a bucket when a predictor gives no better one: the bucket's midpoint. */
export function bucketMidpoint(s: BucketScheme, bucket: number): number {
  return (lowerBound(s, bucket) + upperBound(s, bucket)) / 2;
}

function clampBucket(s: BucketScheme, bucket: number): number {
  if (!Number.isInteger(bucket) || bucket < 0 || bucket >= s.edges.length) {
    throw new LenpredError(`bucket ${bucket} out of range 0..${s.edges.length - 1}`);
  }
  return bucket;
}

export function validateScheme(value: unknown, file?: string): BucketScheme {
  const v = value as BucketScheme;
  const ok = v && typeof v === "object" && ["uniform", "percentile", "log"].includes(v.kind) && Array.isArray(v.edges)
    && v.edges.length > 0 && v.edges.every((e, i) => Number.isFinite(e) && e > 0 && (i === 0 || e > v.edges[i - 1]!));
  if (!ok) throw new LenpredError("invalid bucket scheme (need kind and strictly increasing positive edges)", { file, field: "buckets" });
  return { kind: v.kind, edges: [...v.edges] };
}
