/**
 * Prompt-blind baselines: "majority" predicts the most frequent training bucket (point estimate = that
 * bucket's midpoint, what a pure classifier offers), "median" predicts the median training length (bucket =
 * the one containing it). Both persist as a lenpred.json holding the fixed prediction.
 */
import { join } from "node:path";
import { bucketCount, bucketMidpoint, type BucketScheme } from "../data/buckets.js";
import type { PreparedRecord, PreparedScheme } from "../data/records.js";
import { META_FILE, type ModelMeta } from "../model-dir/index.js";
import { LenpredError } from "../util/errors.js";
import type { Prediction } from "../model/prediction.js";
import { metaNumber, saveModelDir } from "./model-files.js";
import { bucketPrediction, median, pointPrediction, SyncPredictor } from "./sync-predictor.js";

export class ConstantPredictor extends SyncPredictor {
  constructor(readonly name: "majority" | "median", readonly buckets: BucketScheme, readonly tokenizer: string, private readonly fixed: Prediction) {
    super();
  }
  predictSync(): Prediction {
    return { ...this.fixed };
  }
  meta(): ModelMeta {
    return { kind: this.name, buckets: this.buckets, tokenizer: this.tokenizer, bucket: this.fixed.bucket, expectedTokens: this.fixed.expectedTokens };
  }
  save(dir: string): Promise<void> {
    return saveModelDir(dir, this.meta());
  }
  static fromMeta(meta: ModelMeta, dir: string): ConstantPredictor {
    const kind = meta.kind === "median" ? "median" : "majority";
    const bucket = metaNumber(meta, "bucket", dir);
    const k = bucketCount(meta.buckets);
    if (!Number.isInteger(bucket) || bucket < 0 || bucket >= k) throw new LenpredError(`must be a bucket index in 0..${k - 1}, got ${bucket}`, { file: join(dir, META_FILE), field: "bucket" });
    const expected = metaNumber(meta, "expectedTokens", dir);
    if (expected < 0) throw new LenpredError(`must be >= 0, got ${expected}`, { file: join(dir, META_FILE), field: "expectedTokens" });
    return new ConstantPredictor(kind, meta.buckets, meta.tokenizer, bucketPrediction(meta.buckets, bucket, expected));
  }
}

export function trainMajority(train: readonly PreparedRecord[], scheme: PreparedScheme): ConstantPredictor {
  const counts = new Array<number>(bucketCount(scheme.buckets)).fill(0);
  for (const r of train) counts[r.output_length_bucket]!++;
  const best = counts.indexOf(Math.max(...counts));
  return new ConstantPredictor("majority", scheme.buckets, scheme.tokenizer, bucketPrediction(scheme.buckets, best, bucketMidpoint(scheme.buckets, best)));
}

export function trainMedian(train: readonly PreparedRecord[], scheme: PreparedScheme): ConstantPredictor {
  const m = median(train.map((r) => r.output_tokens));
  return new ConstantPredictor("median", scheme.buckets, scheme.tokenizer, pointPrediction(scheme.buckets, m));
}
