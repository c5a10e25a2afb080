/**
 * "linear": ordinary least squares of output tokens on prompt length. The feature is the prompt's
 * whitespace word count, not `prompt_tokens`, because a Predictor only sees the prompt text and this keeps
 * the baseline tokenizer-free; (word and token counts are nearly collinear, so the fit is the same in spirit).
 */
import type { BucketScheme } from "../data/buckets.js";
import type { PreparedRecord, PreparedScheme } from "../data/records.js";
import type { ModelMeta } from "../model-dir/index.js";
import type { Prediction } from "../model/prediction.js";
import { metaNumber, saveModelDir } from "./model-files.js";
import { pointPrediction, SyncPredictor, wordCount } from "./sync-predictor.js";

export class LinearPredictor extends SyncPredictor {
  readonly name = "linear";
  constructor(readonly buckets: BucketScheme, readonly tokenizer: string, readonly intercept: number, readonly slope: number) {
    super();
  }
  predictSync(prompt: string): Prediction {
    return pointPrediction(this.buckets, Math.max(0, this.intercept + this.slope * wordCount(prompt)));
  }
  save(dir: string): Promise<void> {
    return saveModelDir(dir, { kind: "linear", buckets: this.buckets, tokenizer: this.tokenizer, feature: "prompt words", intercept: this.intercept, slope: this.slope });
  }
  static fromMeta(meta: ModelMeta, dir: string): LinearPredictor {
    return new LinearPredictor(meta.buckets, meta.tokenizer, metaNumber(meta, "intercept", dir), metaNumber(meta, "slope", dir));
  }
}

/** Closed-form simple regression (centred sums, so large counts do not lose precision). */
export function fitLine(x: ArrayLike<number>, y: ArrayLike<number>): { intercept: number; slope: number } {
  const n = x.length;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) { mx += x[i]!; my += y[i]!; }
  mx /= n; my /= n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) { sxy += (x[i]! - mx) * (y[i]! - my); sxx += (x[i]! - mx) ** 2; }
  const slope = sxx > 0 ? sxy / sxx : 0;
  return { intercept: my - slope * mx, slope };
}

export function trainLinear(train: readonly PreparedRecord[], scheme: PreparedScheme): LinearPredictor {
  const { intercept, slope } = fitLine(train.map((r) => wordCount(r.prompt)), train.map((r) => r.output_tokens));
  return new LinearPredictor(scheme.buckets, scheme.tokenizer, intercept, slope);
}
