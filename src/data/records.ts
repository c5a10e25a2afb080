/** The prepared-data contract shared by prepare, train, eval, baselines and simulate. */
import type { BucketScheme } from "./buckets.js";

/** One line of `<prepared dir>/{train,val,test}.jsonl`. `output_length_bucket` is the reference field name. */
export interface PreparedRecord {
  id: string | number;
  prompt: string;
  /** Prompt length in tokens of the counting tokenizer (prefill cost and KV size in `simulate`). */
  prompt_tokens: number;
  output_tokens: number;
  output_length_bucket: number;
}

/** `<prepared dir>/scheme.json`: everything a model needs to reproduce the labels. */
export interface PreparedScheme {
  buckets: BucketScheme;
  /** Tokenizer spec as given to `--tokenizer` (e.g. "bert-base-uncased", "llama", "cl100k", a tokenizer.json path). */
  tokenizer: string;
  /** Whether special tokens ([CLS]/[SEP]) were counted in output_tokens. */
  specialTokens: boolean;
  /** How labels were derived, e.g. "alpaca-output", "vicuna:max", "jsonl:output_tokens". */
  label: string;
  template: string;
}

export const SPLITS = ["train", "val", "test"] as const;
export type SplitName = (typeof SPLITS)[number];
