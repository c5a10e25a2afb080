/**
 * What the baselines' predictors share: predictions from a bucket or a point estimate, a `Predictor` whose work
 * is synchronous, and the two statistics they fit (median, whitespace word count).
 */
import { bucketOf, upperBound, type BucketScheme } from "../data/buckets.js";
import type { Prediction, Predictor } from "../model/prediction.js";
import { LenpredError } from "../util/errors.js";

/** A prediction for a bucket with the predictor semantics `upperBound = edges[bucket]`. */
export function bucketPrediction(scheme: BucketScheme, bucket: number, expectedTokens: number, probabilities?: number[]): Prediction {
  const p: Prediction = { bucket, upperBound: upperBound(scheme, bucket), expectedTokens };
  if (probabilities) p.probabilities = probabilities;
  return p;
}

/** Prediction from a point estimate alone: the bucket that contains it. */
export function pointPrediction(scheme: BucketScheme, tokens: number): Prediction {
  return bucketPrediction(scheme, bucketOf(scheme, tokens), tokens);
}

/** A Predictor whose work is synchronous; predictBatch just maps. */
export abstract class SyncPredictor implements Predictor {
  abstract readonly name: string;
  abstract readonly buckets: BucketScheme;
  abstract predictSync(prompt: string): Prediction;
  async predict(prompt: string): Promise<Prediction> {
    return this.predictSync(prompt);
  }
  async predictBatch(prompts: string[]): Promise<Prediction[]> {
    return prompts.map((p) => this.predictSync(p));
  }
}

/** Median of numbers (mean of the two middle values for even counts). */
export function median(values: ArrayLike<number>): number {
  if (values.length === 0) throw new LenpredError("median of no values");
  const s = Float64Array.from(values).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Whitespace word count: the tokenizer-free prompt-length feature the baselines use at predict time. */
export function wordCount(text: string): number {
  const m = text.match(/\S+/g);
  return m ? m.length : 0;
}
