/**
 * The one interface every length predictor implements — baselines, the n-gram model and the DistilBERT
 * `LengthPredictor` — so eval, serve and simulate never care which is behind it.
 */
import type { BucketScheme } from "../data/buckets.js";

export interface Prediction {
  /** Predicted bucket index. */
  bucket: number;
  /** Tokens to reserve: the bucket's upper edge ((bucket + 1) × bucketSize for uniform buckets). */
  upperBound: number;
  /** Point estimate in tokens (probability-weighted bucket midpoints, or a regression output). */
  expectedTokens: number;
  /** Per-bucket probabilities, when the predictor has them. */
  probabilities?: number[];
}

/** Options a model kind's loader may use (the ONNX kind does; the others ignore them). */
export interface PredictorLoadOptions {
  /** onnxruntime intra-op threads (default 2). */
  threads?: number;
  /** Prompts per ONNX run in `predictBatch` (default 32). */
  batchSize?: number;
  /** Cap on padded tokens per ONNX run, so long prompts do not make huge batches (default 16384). */
  maxBatchTokens?: number;
}

export interface Predictor {
  /** Short name used in reports, e.g. "majority", "ngram", "distilbert". */
  readonly name: string;
  readonly buckets: BucketScheme;
  predict(prompt: string): Promise<Prediction>;
  predictBatch(prompts: string[]): Promise<Prediction[]>;
  /**
   * Capability: decode at quantile `q` itself (a head with its own distribution: DistilBERT's regression and
   * quantile heads). Without it, LengthPredictor takes the quantile of `probabilities`.
   */
  predictBatchAtQuantile?(prompts: string[], opts: { quantile: number }): Promise<Prediction[]>;
  /** Release native resources (an ONNX session); absent when there are none. */
  dispose?(): Promise<void>;
}

/** One line of a predictions JSONL (what `lenpred predict --file`/`baseline` write and `lenpred eval` reads). */
export interface PredictionRecord extends Prediction {
  /** 0-based record index in the prepared split the predictions were made for (the join key). */
  index: number;
  id?: string | number;
}
