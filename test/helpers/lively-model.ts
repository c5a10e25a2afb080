/** Tiny DistilBERT fixtures for parity tests: parameters whose logits are far from 0, and padded batches. */
import type { DistilBertConfig } from "../../src/model/config.js";
import { initParams } from "../../src/model/params.js";
import type { NamedTensors } from "../../src/engine/tensors.js";
import { createRng } from "../../src/util/rng.js";

/** HF init has std 0.02, which makes every logit ≈ 0; scale weights and randomise biases/LN so parity means something. */
export function lively(c: DistilBertConfig, seed: number): NamedTensors {
  const p = initParams(c, seed);
  const rng = createRng(seed + 1000);
  for (const [name, t] of p) {
    const isNorm = /LayerNorm|layer_norm/.test(name);
    for (let i = 0; i < t.data.length; i++) {
      if (isNorm) t.data[i] = (name.endsWith("weight") ? 1 : 0) + (rng.next() - 0.5) * 0.4;
      else if (name.endsWith("bias")) t.data[i] = (rng.next() - 0.5) * 0.2;
      else t.data[i] = t.data[i]! * 10;
    }
  }
  return p;
}

/** Variable-length rows padded with 0 and mask 0 (row starts with id 2, like [CLS]). */
export function batchOf(lengths: number[], seqLen: number, vocab: number, seed: number) {
  const rng = createRng(seed);
  const ids = new BigInt64Array(lengths.length * seqLen);
  const mask = new BigInt64Array(lengths.length * seqLen);
  lengths.forEach((len, b) => {
    for (let s = 0; s < len; s++) {
      ids[b * seqLen + s] = BigInt(s === 0 ? 2 : 1 + rng.int(vocab - 1));
      mask[b * seqLen + s] = 1n;
    }
  });
  return { batch: lengths.length, seqLen, inputIds: ids, attentionMask: mask };
}
