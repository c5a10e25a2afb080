/**
 * A tiny "distilbert" model directory for inference tests, built here: a WordPiece tokenizer.json with a
 * 20-word vocabulary, and a model.onnx (built with the engine's graph builder) computing
 * logits = mean over unmasked tokens of W[token] + b — a real graph with the DistilBERT export's
 * inputs/outputs (int64 input_ids/attention_mask → float logits), whose outputs the tests recompute in JS.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Graph } from "../../src/engine/graph.js";
import { add, cast, div, gather, mul, reduceSum, unsqueeze } from "../../src/engine/ops.js";
import type { BucketScheme } from "../../src/data/buckets.js";
import { createRng } from "../../src/util/rng.js";

export const WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "write", "a", "poem", "essay", "list", "short", "long",
  "##s", "the", "about", "sea", "story", "detailed", "one", "word"];
export const ID = Object.fromEntries(WORDS.map((w, i) => [w, i])) as Record<string, number>;

export function tinyTokenizerJson(): object {
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: "1.0", truncation: null, padding: null,
    added_tokens: [0, 1, 2, 3, 4].map((i) => special(i, WORDS[i]!)),
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }, { SpecialToken: { id: "[SEP]", type_id: 1 } }],
      special_tokens: { "[CLS]": { id: "[CLS]", ids: [2], tokens: ["[CLS]"] }, "[SEP]": { id: "[SEP]", ids: [3], tokens: ["[SEP]"] } },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab: ID },
  };
}

export interface TinyModel {
  dir: string;
  w: Float32Array;
  b: Float32Array;
  outputs: number;
}

/** Write a model directory; `meta` is merged into lenpred.json (head, quantiles, residualStd, maxSeqLen). */
export function writeTinyModel(dir: string, scheme: BucketScheme, outputs: number, meta: Record<string, unknown> = {}, seed = "tiny"): TinyModel {
  mkdirSync(dir, { recursive: true });
  const rng = createRng(seed);
  const V = WORDS.length;
  const w = Float32Array.from({ length: V * outputs }, () => (rng.next() - 0.5) * 4);
  const b = Float32Array.from({ length: outputs }, () => rng.next() - 0.5);
  const g = new Graph("tiny");
  const ids = g.input("input_ids", "int64", ["batch", "seq"]);
  const mask = g.input("attention_mask", "int64", ["batch", "seq"]);
  const W = g.initializer("W", { dtype: "float32", shape: [V, outputs], data: w });
  const B = g.initializer("b", { dtype: "float32", shape: [outputs], data: b });
  const m = unsqueeze(cast(mask, "float32"), [2]); // [batch, seq, 1]
  const summed = reduceSum(mul(gather(W, ids, 0), m), [1]); // [batch, outputs]
  const logits = add(div(summed, reduceSum(m, [1])), B);
  g.output("logits", logits);
  writeFileSync(join(dir, "model.onnx"), g.toOnnx());
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tinyTokenizerJson()));
  writeFileSync(join(dir, "lenpred.json"), JSON.stringify({ kind: "distilbert", buckets: scheme, tokenizer: "test-counting", ...meta }));
  return { dir, w, b, outputs };
}

/** Independent reference: the graph's maths on given ids. */
export function referenceOutputs(m: TinyModel, ids: number[]): number[] {
  const sum = new Array<number>(m.outputs).fill(0);
  for (const id of ids) for (let k = 0; k < m.outputs; k++) sum[k]! += m.w[id * m.outputs + k]!;
  return sum.map((s, k) => s / ids.length + m.b[k]!);
}
