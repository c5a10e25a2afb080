/**
 * Token batches as the model runs them, shared by training (train/batching.ts) and inference
 * (the DistilBERT predictor): length-sorted grouping and padding to the longest sequence.
 */
import type { TokenBatch } from "./trainable.js";

/** Deterministic batches for inference/validation: sorted by length so each batch pads little. */
export function sortedBatches(lengths: ArrayLike<number>, batchSize: number): number[][] {
  const order = Array.from({ length: lengths.length }, (_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const out: number[][] = [];
  for (let i = 0; i < order.length; i += batchSize) out.push(order.slice(i, i + batchSize));
  return out;
}

/** Pad a batch of id sequences to its longest one (pad id + attention mask 0). */
export function padBatch(seqs: ArrayLike<number>[], padId: number): TokenBatch {
  const batch = seqs.length;
  let seqLen = 1;
  for (const s of seqs) seqLen = Math.max(seqLen, s.length);
  const inputIds = new BigInt64Array(batch * seqLen).fill(BigInt(padId));
  const attentionMask = new BigInt64Array(batch * seqLen);
  seqs.forEach((s, r) => {
    for (let j = 0; j < s.length; j++) {
      inputIds[r * seqLen + j] = BigInt(s[j]!);
      attentionMask[r * seqLen + j] = 1n;
    }
  });
  return { batch, seqLen, inputIds, attentionMask };
}
