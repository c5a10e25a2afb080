/**
 * Turning a DistilBERT head's outputs into a `Prediction` — shared by training-time validation and
 * inference so both report the same numbers.
 *  - classification: softmax over buckets; bucket = argmax, or in quantile mode the smallest bucket whose
 *    cumulative probability reaches q; expectedTokens = Σ p(bucket) × bucket value, the value being the mean
 *    training length in that bucket when the model recorded it (`bucketMeans`), else the bucket midpoint.
 *  - regression (log(1 + length)): expectedTokens = expm1(output); quantile mode assumes a normal residual in
 *    log space with the validation residual std saved at training time.
 *  - quantile head: outputs are log-length quantiles; the median (or the requested level, interpolated)
 *    gives the tokens and the bucket.
 */
import { bucketCount, bucketMidpoint, bucketOf, upperBound, type BucketScheme } from "../data/buckets.js";
import type { HeadKind } from "./config.js";
import { LenpredError } from "../util/errors.js";
import type { Prediction } from "./prediction.js";

export interface HeadSpec {
  head: HeadKind;
  /** Levels of the quantile head. */
  quantiles?: number[];
  /** Std of log-length residuals on validation data (regression head; enables quantile mode). */
  residualStd?: number;
  /**
   * Mean training output length per bucket (classification head). Answers are skewed within a bucket (most
   * Alpaca answers sit far below bucket 0's midpoint of 64), so means give a better expectedTokens.
   */
  bucketMeans?: number[];
}

export interface DecodeOptions {
  /** Conservative mode: reserve for the q-quantile of the predicted length distribution. */
  quantile?: number;
}

export function softmax(logits: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  const e = Array.from(logits, (x) => Math.exp(x - max));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

/** Smallest bucket whose cumulative probability is ≥ q. */
export function quantileBucket(probabilities: readonly number[], q: number): number {
  let c = 0;
  for (let i = 0; i < probabilities.length; i++) {
    c += probabilities[i]!;
    if (c >= q - 1e-12) return i;
  }
  return probabilities.length - 1;
}

export function checkQuantile(q: number | undefined): void {
  if (q !== undefined && !(q > 0 && q < 1)) throw new LenpredError(`quantile must be in (0, 1), got ${q}`);
}

export function decodeOutputs(row: ArrayLike<number>, spec: HeadSpec, scheme: BucketScheme, opts: DecodeOptions = {}): Prediction {
  checkQuantile(opts.quantile);
  if (spec.head === "classification") {
    if (row.length !== bucketCount(scheme)) throw new LenpredError(`model has ${row.length} outputs but the bucket scheme has ${bucketCount(scheme)} buckets`);
    const probabilities = softmax(row);
    let bucket = 0;
    if (opts.quantile !== undefined) bucket = quantileBucket(probabilities, opts.quantile);
    else for (let i = 1; i < probabilities.length; i++) if (probabilities[i]! > probabilities[bucket]!) bucket = i;
    const value = (i: number) => spec.bucketMeans?.[i] ?? bucketMidpoint(scheme, i);
    const expectedTokens = probabilities.reduce((s, p, i) => s + p * value(i), 0);
    return { bucket, upperBound: upperBound(scheme, bucket), expectedTokens, probabilities };
  }
  if (spec.head === "regression") {
    const mu = row[0]!;
    let logTokens = mu;
    if (opts.quantile !== undefined) {
      if (spec.residualStd === undefined) throw new LenpredError("quantile mode needs the regression head's residual std (not recorded in this model's lenpred.json)");
      logTokens = mu + normalQuantile(opts.quantile) * spec.residualStd;
    }
    return tokensPrediction(Math.max(0, Math.expm1(mu)), Math.max(0, Math.expm1(logTokens)), scheme);
  }
  const levels = spec.quantiles ?? [];
  if (levels.length !== row.length) throw new LenpredError(`model has ${row.length} outputs but ${levels.length} quantile levels`);
  // Quantile heads can cross; sorting restores monotonicity (rearrangement) without changing the set.
  const values = Array.from(row).sort((a, b) => a - b);
  const at = (q: number) => interpolate(levels, values, q);
  const median = Math.max(0, Math.expm1(at(0.5)));
  return tokensPrediction(median, Math.max(0, Math.expm1(at(opts.quantile ?? 0.5))), scheme);
}

function tokensPrediction(expectedTokens: number, reserveTokens: number, scheme: BucketScheme): Prediction {
  const bucket = bucketOf(scheme, reserveTokens);
  return { bucket, upperBound: upperBound(scheme, bucket), expectedTokens };
}

/** Piecewise-linear interpolation of y over increasing x, clamped at the ends. */
export function interpolate(xs: readonly number[], ys: readonly number[], x: number): number {
  if (x <= xs[0]!) return ys[0]!;
  for (let i = 1; i < xs.length; i++) {
    if (x <= xs[i]!) return ys[i - 1]! + ((ys[i]! - ys[i - 1]!) * (x - xs[i - 1]!)) / (xs[i]! - xs[i - 1]!);
  }
  return ys[ys.length - 1]!;
}

/** Inverse standard-normal CDF (Acklam's rational approximation, |error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}
