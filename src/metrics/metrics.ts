/**
 * The metrics every lenpred model is judged by. Pure functions over arrays so that eval, train
 * (validation) and benches share them.
 *
 * Definitions (n = number of records, y = true output tokens, ŷ = `expectedTokens`, u = `upperBound`):
 * - bucketAccuracy: predicted bucket == true bucket; withinOneBucketAccuracy: |Δbucket| ≤ 1.
 * - macroF1: unweighted mean over buckets of per-bucket F1; buckets with no true and no predicted records
 *   are left out (their F1 is undefined), buckets that only one side has count as F1 = 0.
 * - confusion[actual][predicted]: counts.
 * - mae / rmse: over ŷ − y in tokens. `error` (Sequence-Scheduling, Zheng et al. 2023) is the same mean |ŷ − y|;
 *   acc50 / acc100 = fraction with |ŷ − y| ≤ 50 / ≤ 100 (inclusive, as their src/eval.py).
 * - underAllocationRate: fraction with u < y (the reservation would overflow and need a re-allocation).
 * - overAllocationWaste: Σ max(0, u − y) / Σ u — the share of all reserved tokens that go unused.
 * - kendallTauB: rank correlation of ŷ with y (ties handled), what a scheduler sorting by ŷ cares about.
 * - logLoss: mean −ln p(true bucket) (probabilities renormalised, floored at 1e-12), only when every
 *   prediction carries probabilities; the calibration-sensitive score to tune classifiers by.
 */
import { bucketCount, type BucketScheme } from "../data/buckets.js";
import { kendallTauB } from "./kendall.js";

export interface PointPrediction {
  bucket: number;
  upperBound: number;
  expectedTokens: number;
  probabilities?: ArrayLike<number>;
}

export interface BucketStats {
  bucket: number;
  /** Upper edge in tokens. */
  edge: number;
  support: number;
  predicted: number;
  precision: number;
  recall: number;
  f1: number;
}

export interface MetricsReport {
  n: number;
  bucketAccuracy: number;
  withinOneBucketAccuracy: number;
  macroF1: number;
  perBucket: BucketStats[];
  /** confusion[actual][predicted] */
  confusion: number[][];
  mae: number;
  rmse: number;
  /** Sequence-Scheduling Error = mean |ŷ − y| (same value as mae, kept under its paper name). */
  error: number;
  acc50: number;
  acc100: number;
  underAllocationRate: number;
  overAllocationWaste: number;
  /** Mean tokens reserved (upperBound) and mean true tokens, to put the waste in context. */
  meanReserved: number;
  meanActual: number;
  kendallTauB: number;
  /** Present only when every prediction has probabilities. */
  logLoss?: number;
}

/**
 * @param actualTokens true output lengths
 * @param actualBuckets true buckets (the prepared `output_length_bucket`)
 */
export function computeMetrics(
  scheme: BucketScheme,
  actualTokens: ArrayLike<number>,
  actualBuckets: ArrayLike<number>,
  preds: ArrayLike<PointPrediction>,
): MetricsReport {
  const n = actualTokens.length;
  if (actualBuckets.length !== n || preds.length !== n) {
    throw new Error(`computeMetrics: length mismatch (${n} tokens, ${actualBuckets.length} buckets, ${preds.length} predictions)`);
  }
  if (n === 0) throw new Error("computeMetrics: no records");
  const k = bucketCount(scheme);
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let exact = 0, withinOne = 0, absSum = 0, sqSum = 0, a50 = 0, a100 = 0, under = 0, reserved = 0, unused = 0, actualSum = 0;
  const est = new Float64Array(n);
  let nll = 0, withProbs = 0;
  for (let i = 0; i < n; i++) {
    const p = preds[i]!;
    const y = actualTokens[i]!;
    const b = actualBuckets[i]!;
    if (!(b >= 0 && b < k) || !(p.bucket >= 0 && p.bucket < k)) {
      throw new Error(`computeMetrics: record ${i}: bucket out of range 0..${k - 1} (actual ${b}, predicted ${p.bucket})`);
    }
    confusion[b]![p.bucket]!++;
    if (p.bucket === b) exact++;
    if (Math.abs(p.bucket - b) <= 1) withinOne++;
    const d = Math.abs(p.expectedTokens - y);
    absSum += d;
    sqSum += d * d;
    if (d <= 50) a50++;
    if (d <= 100) a100++;
    if (p.upperBound < y) under++;
    reserved += p.upperBound;
    unused += Math.max(0, p.upperBound - y);
    actualSum += y;
    est[i] = p.expectedTokens;
    if (p.probabilities && p.probabilities.length === k) {
      let total = 0;
      for (let c = 0; c < k; c++) total += p.probabilities[c]!;
      nll -= Math.log(Math.max(total > 0 ? p.probabilities[b]! / total : 0, 1e-12));
      withProbs++;
    }
  }
  const perBucket: BucketStats[] = [];
  let f1Sum = 0, f1Count = 0;
  for (let c = 0; c < k; c++) {
    const tp = confusion[c]![c]!;
    const support = confusion[c]!.reduce((s, v) => s + v, 0);
    let predicted = 0;
    for (let r = 0; r < k; r++) predicted += confusion[r]![c]!;
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    perBucket.push({ bucket: c, edge: scheme.edges[c]!, support, predicted, precision, recall, f1 });
    if (support > 0 || predicted > 0) {
      f1Sum += f1;
      f1Count++;
    }
  }
  const report: MetricsReport = {
    n,
    bucketAccuracy: exact / n,
    withinOneBucketAccuracy: withinOne / n,
    macroF1: f1Count ? f1Sum / f1Count : 0,
    perBucket,
    confusion,
    mae: absSum / n,
    rmse: Math.sqrt(sqSum / n),
    error: absSum / n,
    acc50: a50 / n,
    acc100: a100 / n,
    underAllocationRate: under / n,
    overAllocationWaste: reserved > 0 ? unused / reserved : 0,
    meanReserved: reserved / n,
    meanActual: actualSum / n,
    kendallTauB: kendallTauB(est, actualTokens),
  };
  if (withProbs === n) report.logLoss = nll / n;
  return report;
}
