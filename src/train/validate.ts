/**
 * Per-epoch validation: inference over the validation split (length-sorted batches), the head's loss, and
 * the serving metrics decoded exactly as `LengthPredictor` decodes them: bucket accuracy, MAE of
 * expectedTokens, and under-allocation (share of prompts whose reserved upper bound is below the real length,
 * i.e. the KV reservation would have to grow).
 */
import type { BucketScheme } from "../data/buckets.js";
import { decodeOutputs, type HeadSpec } from "../predictor/decode.js";
import { collate, logLengthTarget, sortedBatches, type Example } from "./batching.js";
import { batchLossSum } from "./loss.js";
import type { TrainableModel } from "./trainable.js";

export interface EpochMetrics {
  valLoss: number;
  accuracy: number;
  mae: number;
  underAllocation: number;
  /** Std of log(1+length) residuals (regression head), saved so quantile mode works at inference. */
  residualStd?: number;
}

export async function validate(
  model: TrainableModel, examples: readonly Example[], spec: HeadSpec, scheme: BucketScheme,
  opts: { batchSize: number; padId: number; onBatch?: (done: number, total: number) => void },
): Promise<EpochMetrics> {
  const batches = sortedBatches(examples.map((e) => e.ids.length), opts.batchSize);
  let loss = 0, correct = 0, absErr = 0, under = 0, sq = 0;
  let done = 0;
  for (const idx of batches) {
    const batch = collate(examples, idx, spec.head, opts.padId);
    const out = await model.forward(batch);
    const k = model.numOutputs;
    loss += batchLossSum(spec.head, out, k, batch, spec.quantiles);
    idx.forEach((ei, r) => {
      const ex = examples[ei]!;
      const row = out.subarray(r * k, (r + 1) * k);
      const p = decodeOutputs(row, spec, scheme);
      if (p.bucket === ex.bucket) correct++;
      absErr += Math.abs(p.expectedTokens - ex.outputTokens);
      if (p.upperBound < ex.outputTokens) under++;
      if (spec.head === "regression") sq += (row[0]! - logLengthTarget(ex.outputTokens)) ** 2;
    });
    done += idx.length;
    opts.onBatch?.(done, examples.length);
  }
  const n = Math.max(1, examples.length);
  const m: EpochMetrics = { valLoss: loss / n, accuracy: correct / n, mae: absErr / n, underAllocation: under / n };
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
