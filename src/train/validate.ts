/**
 * Per-epoch validation: inference over the validation split (length-sorted batches), the head's loss, and
 * the serving metrics (shared metrics library) of predictions decoded exactly as `LengthPredictor` decodes
 * them: bucket accuracy, MAE of expectedTokens (= Sequence-Scheduling "Error"), Acc-50/Acc-100, and
 * under-allocation (share of prompts whose reserved upper bound is below the real length).
 */
import type { BucketScheme } from "../data/buckets.js";
import { computeMetrics, type PointPrediction } from "../metrics/metrics.js";
import { decodeOutputs, type HeadSpec } from "../model/decode.js";
import { sortedBatches } from "../model/token-batch.js";
import { collate, logLengthTarget, type Example } from "./batching.js";
import { batchLossSum } from "./loss.js";
import type { TrainableModel } from "../model/trainable.js";

export interface EpochMetrics {
  valLoss: number;
  accuracy: number;
  mae: number;
  acc50: number;
  acc100: number;
  underAllocation: number;
  /** Std of log(1+length) residuals (regression head), saved so quantile mode works at inference. */
  residualStd?: number;
}

export async function validate(
  model: TrainableModel, examples: readonly Example[], spec: HeadSpec, scheme: BucketScheme,
  opts: { batchSize: number; padId: number; onBatch?: (done: number, total: number) => void },
): Promise<EpochMetrics> {
  const batches = sortedBatches(examples.map((e) => e.ids.length), opts.batchSize);
  let loss = 0, sq = 0;
  const preds: PointPrediction[] = new Array(examples.length);
  let done = 0;
  for (const idx of batches) {
    const batch = collate(examples, idx, spec.head, opts.padId);
    const out = await model.forward(batch);
    const k = model.numOutputs;
    loss += batchLossSum(spec.head, out, k, batch, spec.quantiles);
    idx.forEach((ei, r) => {
      const ex = examples[ei]!;
      const row = out.subarray(r * k, (r + 1) * k);
      preds[ei] = decodeOutputs(row, spec, scheme);
      if (spec.head === "regression") sq += (row[0]! - logLengthTarget(ex.outputTokens)) ** 2;
    });
    done += idx.length;
    opts.onBatch?.(done, examples.length);
  }
  const n = Math.max(1, examples.length);
  const r = computeMetrics(scheme, examples.map((e) => e.outputTokens), examples.map((e) => e.bucket), preds);
  const m: EpochMetrics = {
    valLoss: loss / n, accuracy: r.bucketAccuracy, mae: r.mae, acc50: r.acc50, acc100: r.acc100, underAllocation: r.underAllocationRate,
  };
  if (spec.head === "regression") m.residualStd = Math.sqrt(sq / n);
  return m;
}

/** Is `a` better than `b` for the monitored metric? */
export function isBetter(monitor: "val_loss" | "accuracy" | "mae", a: EpochMetrics, b: EpochMetrics | undefined): boolean {
  if (!b) return true;
  if (monitor === "accuracy") return a.accuracy > b.accuracy;
  if (monitor === "mae") return a.mae < b.mae;
  return a.valLoss < b.valLoss;
}
