/**
 * Quantile mode: instead of the most likely bucket, reserve the smallest bucket whose cumulative
 * probability reaches q. A scheduler that would rather over-reserve than run out of KV cache asks for
 * q = 0.9: with calibrated probabilities the reply then fits its reservation ~90 % of the time.
 */
import { upperBound, type BucketScheme } from "../data/buckets.js";
import type { Prediction } from "../predictor/types.js";

/**
 * Smallest bucket index b with sum(p[0..b]) >= q · sum(p). Probabilities are normalised by their sum
 * (float rounding leaves softmax outputs a hair away from 1, and q = 1 must still pick the last non-zero
 * bucket rather than fall off the end). Throws on an empty/negative/non-finite vector or q outside (0, 1].
 */
export function quantileBucket(probabilities: readonly number[], q: number): number {
  if (!(q > 0 && q <= 1)) throw new RangeError(`quantile must be in (0, 1], got ${q}`);
  let total = 0;
  for (const p of probabilities) {
    if (!(Number.isFinite(p) && p >= 0)) throw new RangeError(`probabilities must be finite and >= 0, got ${p}`);
    total += p;
  }
  if (!(total > 0)) throw new RangeError("probabilities must not all be zero");
  const target = q * total;
  let cum = 0;
  let lastNonZero = 0;
  for (let b = 0; b < probabilities.length; b++) {
    const p = probabilities[b]!;
    if (p > 0) lastNonZero = b;
    cum += p;
    if (cum >= target) return b;
  }
  // Only reachable through rounding when q = 1 (cum ends a few ulps below total).
  return lastNonZero;
}

/** The prediction with bucket/upperBound replaced by the q-quantile bucket; expectedTokens (a mean) is kept. */
export function applyQuantile(prediction: Prediction, scheme: BucketScheme, q: number): Prediction {
  if (!prediction.probabilities) throw new RangeError("the predictor gives no probabilities");
  if (prediction.probabilities.length !== scheme.edges.length) {
    throw new RangeError(`predictor gave ${prediction.probabilities.length} probabilities for ${scheme.edges.length} buckets`);
  }
  const bucket = quantileBucket(prediction.probabilities, q);
  return { ...prediction, bucket, upperBound: upperBound(scheme, bucket) };
}
