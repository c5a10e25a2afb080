/**
 * A synthetic `Predictor` for exercising the server without a trained model (tests, `bench:serve`,
 * `lenpred serve --synthetic`). Its predictions are deterministic in the prompt's length and carry
 * probabilities (so quantile mode works); they say NOTHING about real output lengths.
 *
 * Cost model: each `predictBatch` call waits `batchMs + promptMs × size` on a timer, like an ONNX Runtime
 * run that happens off the event loop and pays a fixed per-call overhead. It records every batch size,
 * which is how tests prove that micro-batching happened.
 */
import { bucketMidpoint, uniformBuckets, type BucketScheme } from "../data/buckets.js";
import type { Prediction, Predictor } from "../model/prediction.js";

export interface SyntheticOptions {
  buckets?: BucketScheme;
  /** Fixed cost per predictBatch call, ms. */
  batchMs?: number;
  /** Extra cost per prompt in a call, ms. */
  promptMs?: number;
}

export class SyntheticPredictor implements Predictor {
  readonly name = "synthetic";
  readonly buckets: BucketScheme;
  /** Size of every predictBatch call, in call order. */
  readonly batchSizes: number[] = [];
  private readonly batchMs: number;
  private readonly promptMs: number;

  constructor(opts: SyntheticOptions = {}) {
    this.buckets = opts.buckets ?? uniformBuckets(512, 8);
    this.batchMs = opts.batchMs ?? 0;
    this.promptMs = opts.promptMs ?? 0;
  }

  /** Deterministic: the most likely bucket is the one holding ~chars/4 tokens; the rest decays geometrically. */
  predictOne(prompt: string): Prediction {
    const e = this.buckets.edges;
    const tokens = Math.ceil([...prompt].length / 4);
    let mode = e.findIndex((edge) => tokens < edge);
    if (mode < 0) mode = e.length - 1;
    const raw = e.map((_, b) => Math.pow(0.3, Math.abs(b - mode)));
    const sum = raw.reduce((a, b) => a + b, 0);
    const probabilities = raw.map((p) => p / sum);
    const expectedTokens = probabilities.reduce((acc, p, b) => acc + p * bucketMidpoint(this.buckets, b), 0);
    return { bucket: mode, upperBound: e[mode]!, expectedTokens, probabilities };
  }

  async predict(prompt: string): Promise<Prediction> {
    return (await this.predictBatch([prompt]))[0]!;
  }

  async predictBatch(prompts: string[]): Promise<Prediction[]> {
    this.batchSizes.push(prompts.length);
    const ms = this.batchMs + this.promptMs * prompts.length;
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    return prompts.map((p) => this.predictOne(p));
  }
}
