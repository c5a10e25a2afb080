/**
 * Length-grouped batches with dynamic padding, as HF's `group_by_length`: shuffle, cut into mega-batches of
 * 50 batches, sort each mega-batch by length (longest first) and slice it into batches. Similar lengths share
 * a batch, so little compute goes to padding, while the order stays random. Batches are padded only to their
 * own longest sequence.
 */
import type { HeadKind } from "../model/config.js";
import { shuffleInPlace, type Rng } from "../util/rng.js";
import { padBatch } from "../model/token-batch.js";
import type { LabeledBatch, TokenBatch } from "../model/trainable.js";

/** One tokenized training example. */
export interface Example {
  /** Token ids including special tokens, already truncated to the maximum input length. */
  ids: Int32Array;
  /** Gold bucket (classification label). */
  bucket: number;
  /** Gold output length in tokens. */
  outputTokens: number;
}

export const MEGABATCH_MULT = 50;

/** Random, length-grouped batches of example indices (consumes `rng`). */
export function lengthGroupedBatches(lengths: ArrayLike<number>, batchSize: number, rng: Rng): number[][] {
  const order = shuffleInPlace(Array.from({ length: lengths.length }, (_, i) => i), rng);
  const mega = batchSize * MEGABATCH_MULT;
  const batches: number[][] = [];
  for (let m = 0; m < order.length; m += mega) {
    // Stable sort keeps the shuffled order among equal lengths (deterministic across runs).
    const chunk = order.slice(m, m + mega).sort((a, b) => lengths[b]! - lengths[a]!);
    for (let i = 0; i < chunk.length; i += batchSize) batches.push(chunk.slice(i, i + batchSize));
  }
  return batches;
}

/** Regression/quantile target: log(1 + output tokens), so errors are relative rather than absolute. */
export function logLengthTarget(outputTokens: number): number {
  return Math.log1p(outputTokens);
}

export function collate(examples: readonly Example[], indices: readonly number[], head: HeadKind, padId: number): LabeledBatch {
  const b: LabeledBatch = padBatch(indices.map((i) => examples[i]!.ids), padId);
  if (head === "classification") b.labels = Int32Array.from(indices, (i) => examples[i]!.bucket);
  else b.targets = Float32Array.from(indices, (i) => logLengthTarget(examples[i]!.outputTokens));
  return b;
}

/** Non-padding tokens in a batch (what tokens/s counts). */
export function realTokens(b: TokenBatch): number {
  let n = 0;
  for (let i = 0; i < b.attentionMask.length; i++) if (b.attentionMask[i] === 1n) n++;
  return n;
}
