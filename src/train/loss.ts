/**
 * Head losses computed from model outputs in plain TypeScript, for validation loss (the model's `trainStep`
 * computes the same losses for training): cross-entropy over buckets, squared error on log(1 + length), and
 * the pinball loss on log(1 + length) averaged over quantile levels.
 */
import type { HeadKind } from "../model/config.js";
import type { LabeledBatch } from "../model/trainable.js";

/** Sum (not mean) of per-row losses of a batch, so epoch means weight every example equally. */
export function batchLossSum(head: HeadKind, outputs: Float32Array, numOutputs: number, batch: LabeledBatch, quantiles: readonly number[] = []): number {
  let sum = 0;
  for (let r = 0; r < batch.batch; r++) {
    const row = outputs.subarray(r * numOutputs, (r + 1) * numOutputs);
    if (head === "classification") sum += crossEntropy(row, batch.labels![r]!);
    else if (head === "regression") sum += (row[0]! - batch.targets![r]!) ** 2;
    else sum += pinball(row, batch.targets![r]!, quantiles);
  }
  return sum;
}

export function crossEntropy(logits: ArrayLike<number>, label: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  let z = 0;
  for (let i = 0; i < logits.length; i++) z += Math.exp(logits[i]! - max);
  return Math.log(z) + max - logits[label]!;
}

export function pinball(preds: ArrayLike<number>, target: number, quantiles: readonly number[]): number {
  let s = 0;
  for (let k = 0; k < quantiles.length; k++) {
    const d = target - preds[k]!;
    s += Math.max(quantiles[k]! * d, (quantiles[k]! - 1) * d);
  }
  return s / quantiles.length;
}
