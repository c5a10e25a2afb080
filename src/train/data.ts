/**
 * Training data from a prepared directory: train/val splits (validated by the shared reader), prompts
 * encoded with the model's input tokenizer ([CLS] … [SEP], truncated to --max-length), labels from the
 * prepared buckets/lengths.
 */
import type { PreparedRecord, PreparedScheme } from "../data/records.js";
import { readPreparedSplit } from "../data/prepared-dir.js";
import type { Tokenizer } from "../tokenizers/types.js";
import type { Example } from "./batching.js";
import type { TrainingData } from "./loop.js";

export interface LoadedTrainingData extends TrainingData {
  prepared: PreparedScheme;
  /** Prompts longer than maxLength (truncated), per split. */
  truncated: { train: number; val: number };
}

export function encodeExamples(records: readonly PreparedRecord[], tok: Tokenizer, maxLength: number, onProgress?: (done: number) => void): { examples: Example[]; truncated: number } {
  let truncated = 0;
  const examples = records.map((r, i) => {
    const full = tok.count(r.prompt, { addSpecialTokens: true });
    if (full > maxLength) truncated++;
    const ids = Int32Array.from(tok.encode(r.prompt, { addSpecialTokens: true, maxLength }));
    if (onProgress && i % 500 === 0) onProgress(i);
    return { ids, bucket: r.output_length_bucket, outputTokens: r.output_tokens };
  });
  onProgress?.(records.length);
  return { examples, truncated };
}

export async function loadTrainingData(
  dir: string, tok: Tokenizer,
  opts: { maxLength: number; maxTrainRecords?: number; maxValRecords?: number; onProgress?: (split: string, done: number, total: number) => void },
): Promise<LoadedTrainingData> {
  const train = await readPreparedSplit(dir, "train");
  const val = await readPreparedSplit(dir, "val");
  const tr = train.records.slice(0, opts.maxTrainRecords ?? train.records.length);
  const va = val.records.slice(0, opts.maxValRecords ?? val.records.length);
  const t = encodeExamples(tr, tok, opts.maxLength, (d) => opts.onProgress?.("train", d, tr.length));
  const v = encodeExamples(va, tok, opts.maxLength, (d) => opts.onProgress?.("val", d, va.length));
  return {
    train: t.examples, val: v.examples, scheme: train.scheme.buckets, padId: tok.special.pad ?? 0,
    prepared: train.scheme, truncated: { train: t.truncated, val: v.truncated },
  };
}
