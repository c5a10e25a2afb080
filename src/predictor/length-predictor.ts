/**
 * `LengthPredictor`: the library API for output-length prediction, over any lenpred model directory
 * (DistilBERT, n-gram, baselines).
 *
 * ```ts
 * import { LengthPredictor } from "lenpred";
 * const p = await LengthPredictor.load("alpaca-s3");         // a bundled model by name, or any model directory
 * await p.predictLength("Write a haiku about the sea.");   // tokens to reserve, e.g. 64
 * await p.predict("Explain TCP slow start.");              // { bucket, upperBound, expectedTokens, probabilities }
 * await p.predictBatch(prompts);                           // grouped by length, batched
 * const safe = await LengthPredictor.load(dir, { quantile: 0.9 }); // reserve for the 90th percentile
 * ```
 */
import type { BucketScheme } from "../data/buckets.js";
import { upperBound } from "../data/buckets.js";
import { LenpredError } from "../util/errors.js";
import { checkQuantile, quantileBucket } from "../model/decode.js";
import type { DistilBertLoadOptions } from "./distilbert-predictor.js";
import { loadPredictor } from "./load.js";
import { resolveModelDir } from "./bundled.js";
import type { HubOptions } from "../hub/client.js";
import type { Prediction, Predictor } from "../model/prediction.js";

export interface LengthPredictorOptions extends DistilBertLoadOptions {
  /**
   * Conservative mode: choose the smallest bucket whose cumulative predicted probability is ≥ q (or the
   * q-quantile of a regression/quantile head), so that under-allocation drops at the cost of reserving more.
   * Undefined = the most likely bucket (the S³ reference behaviour).
   */
  quantile?: number;
  /**
   * Longest prompt accepted, in characters (Unicode code points); longer → LenpredError. Default
   * DEFAULT_MAX_PROMPT_CHARS, the same limit `lenpred serve` and `lenpred predict` apply.
   */
  maxPromptChars?: number;
  /** Hub client settings for `org/name` models (default: from the environment). */
  hub?: HubOptions;
}

/**
 * The one prompt-size limit of library, CLI (`predict --max-prompt-chars`) and server (`serve
 * --max-prompt-chars`): prompts are truncated to the model's maximum tokens anyway, so a longer one only costs
 * tokenizer time and memory.
 */
export const DEFAULT_MAX_PROMPT_CHARS = 32_768;

export interface PredictOptions {
  /** Per-call override of the conservative-mode quantile. */
  quantile?: number;
}

export class LengthPredictor implements Predictor {
  readonly maxPromptChars: number;

  private constructor(readonly inner: Predictor, private readonly quantile: number | undefined, maxPromptChars = DEFAULT_MAX_PROMPT_CHARS) {
    checkQuantile(quantile);
    checkMaxPromptChars(maxPromptChars);
    this.maxPromptChars = maxPromptChars;
  }

  /**
   * Open a model directory (any kind: distilbert, ngram, linear, median, majority, ensemble) or a bundled
   * model by name (`"alpaca-s3"`, `"vicuna-7b"`; an existing path of that name wins), or a Hugging Face hub
   * repository holding a lenpred model directory (`"org/name"`, `"org/name@rev"`, `"hf:org/name"`), fetched into
   * the hub cache (`HF_ENDPOINT`, `HF_TOKEN`, `HF_HUB_CACHE`, `HF_HUB_OFFLINE` apply; `opts.hub` overrides them).
   */
  static async load(model: string, opts: LengthPredictorOptions = {}): Promise<LengthPredictor> {
    checkQuantile(opts.quantile);
    checkMaxPromptChars(opts.maxPromptChars);
    const dir = await resolveModelDir(model, opts.hub);
    const inner = await loadPredictor(dir, opts);
    return new LengthPredictor(inner, opts.quantile, opts.maxPromptChars);
  }

  /** Wrap an already-loaded predictor. */
  static from(inner: Predictor, opts: { quantile?: number; maxPromptChars?: number } = {}): LengthPredictor {
    return new LengthPredictor(inner, opts.quantile, opts.maxPromptChars);
  }

  get name(): string {
    return this.inner.name;
  }

  get buckets(): BucketScheme {
    return this.inner.buckets;
  }

  /** Tokens to reserve for the answer: the predicted bucket's upper edge ((bucket + 1) × bucketSize). */
  async predictLength(prompt: string, opts: PredictOptions = {}): Promise<number> {
    return (await this.predict(prompt, opts)).upperBound;
  }

  async predictLengthBatch(prompts: string[], opts: PredictOptions = {}): Promise<number[]> {
    return (await this.predictBatch(prompts, opts)).map((p) => p.upperBound);
  }

  async predict(prompt: string, opts: PredictOptions = {}): Promise<Prediction> {
    if (typeof prompt !== "string") throw new LenpredError("prompt must be a string", { field: "prompt" });
    return (await this.predictBatch([prompt], opts))[0]!;
  }

  /** Predict many prompts; the DistilBERT kind groups them by token length into padded batches. */
  async predictBatch(prompts: string[], opts: PredictOptions = {}): Promise<Prediction[]> {
    prompts.forEach((prompt, i) => checkPrompt(prompt, prompts.length === 1 ? "prompt" : `prompts[${i}]`, {}, this.maxPromptChars));
    const q = opts.quantile ?? this.quantile;
    checkQuantile(q);
    if (q === undefined) return this.inner.predictBatch(prompts);
    if (this.inner.predictBatchAtQuantile) return this.inner.predictBatchAtQuantile(prompts, { quantile: q });
    const preds = await this.inner.predictBatch(prompts);
    return preds.map((p) => {
      if (!p.probabilities) throw new LenpredError(`quantile mode needs bucket probabilities, which a '${this.inner.name}' model does not give`);
      const bucket = quantileBucket(p.probabilities, q);
      return { ...p, bucket, upperBound: upperBound(this.buckets, bucket) };
    });
  }

  /** Release native resources (the ONNX session). */
  async dispose(): Promise<void> {
    await this.inner.dispose?.();
  }
}

/**
 * A prompt must be a string with some non-whitespace text (an empty prompt carries no signal, and a model would
 * silently answer with its prior, which a scheduler would take for a prediction) and at most `maxChars`
 * characters (Unicode code points). Callers pass their configured limit (LengthPredictor its `maxPromptChars`,
 * default DEFAULT_MAX_PROMPT_CHARS); without one only emptiness is checked (the server checks size in its schema).
 */
export function checkPrompt(prompt: unknown, field: string, place: { file?: string; record?: number } = {}, maxChars = Infinity): asserts prompt is string {
  if (typeof prompt !== "string") throw new LenpredError(`expected a string, got ${typeof prompt}`, { ...place, field });
  if (prompt.length > maxChars) {
    const chars = codePoints(prompt, maxChars + 1);
    if (chars > maxChars) throw new LenpredError(`prompt is longer than ${maxChars} characters (the prompt-size limit, maxPromptChars)`, { ...place, field });
  }
  if (prompt.trim() === "") throw new LenpredError("prompt is empty", { ...place, field });
}

/** Code points of `s`, counting no further than `stop` (a UTF-16 string has at most `s.length`). */
export function codePoints(s: string, stop = Infinity): number {
  let n = 0;
  for (let i = 0; i < s.length && n < stop; i++, n++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
  }
  return n;
}

function checkMaxPromptChars(v: number | undefined): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw new LenpredError(`maxPromptChars must be an integer >= 1, got ${v}`, { field: "maxPromptChars" });
}
