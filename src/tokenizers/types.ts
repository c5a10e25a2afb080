/** The tokenizer contract used by prepare (counting), the DistilBERT trainer/predictor (input ids) and simulate. */

export interface EncodeOptions {
  /** Add the tokenizer's special tokens ([CLS] … [SEP] for BERT, <s> for LLaMA). Default true, as HF `encode` does. */
  addSpecialTokens?: boolean;
  /**
   * Truncate to at most this many ids, HF-style: content is cut first so that the special tokens
   * (when added) always survive, e.g. BERT keeps `[CLS] … [SEP]`.
   */
  maxLength?: number;
}

/** Ids of the special tokens a model needs; absent when the tokenizer has no such token. */
export interface SpecialIds {
  cls?: number;
  sep?: number;
  pad?: number;
  unk?: number;
  mask?: number;
  bos?: number;
  eos?: number;
}

export interface Tokenizer {
  /** Canonical name, e.g. "bert-base-uncased", "cl100k", "llama", or the tokenizer.json path. */
  readonly name: string;
  /** Backend family (useful in messages and model metadata). */
  readonly kind: "huggingface" | "tiktoken" | "llama";
  readonly vocabSize: number;
  readonly special: SpecialIds;
  /** Path of the tokenizer.json this tokenizer was built from (HF tokenizers only). */
  readonly tokenizerJsonPath?: string;
  encode(text: string, opts?: EncodeOptions): number[];
  /** Same as `encode(text, opts).length`, possibly cheaper. */
  count(text: string, opts?: EncodeOptions): number;
  decode(ids: number[]): string;
}
