/**
 * What the proxy needs from a length predictor: a prediction per request (for the model the request names)
 * and a place to report the true length afterwards. Narrow on purpose, so that today's `LengthPredictor`
 * (adapter below) and the online learner (`predictBatch` + `observe`) both fit in a few lines.
 */
import type { LengthPredictor } from "../predictor/length-predictor.js";
import { MicroBatcher } from "../serve/batcher.js";

export interface ProxyPrediction {
  /** Point estimate of the output length: the sjf/s3 order. */
  expectedTokens: number;
  /** Output tokens to reserve: the s3 admission budget. */
  reserveTokens: number;
  /** Prompt tokens, when the predictor counted them (otherwise the proxy counts with its tokenizer). */
  promptTokens?: number;
}

export interface ProxyObservation {
  model?: string;
  prompt: string;
  output_tokens: number;
  prompt_tokens?: number;
  request_id?: string;
}

export interface ProxyPredictor {
  readonly name: string;
  predict(req: { model?: string; prompt: string }): Promise<ProxyPrediction>;
  /** The upstream's true answer length; the proxy counts `lenpred_observations_total{model}` itself. */
  observe?(obs: ProxyObservation): void | Promise<void>;
  close?(): Promise<void>;
}

export interface AdapterOptions {
  /** Micro-batch concurrent predictions into one predictor call (as `lenpred serve` does). Default 16. */
  maxBatch?: number;
  /** Longest a prompt waits for others to join its batch, ms. Default 1. */
  maxWaitMs?: number;
  quantile?: number;
}

/**
 * Today's `LengthPredictor` as a ProxyPredictor: reserveTokens = upperBound (the predicted bucket's edge);
 * `observe` is a no-op until online learning lands (the proxy still counts observations). The model name is
 * ignored: one predictor for every upstream model.
 */
export function fromLengthPredictor(lp: LengthPredictor, opts: AdapterOptions = {}): ProxyPredictor {
  const batcher = new MicroBatcher(lp, { maxBatch: opts.maxBatch ?? 16, maxWaitMs: opts.maxWaitMs ?? 1, maxQueue: 1 << 16 });
  return {
    name: lp.name,
    async predict({ prompt }) {
      const [p] = await batcher.submit([prompt], opts.quantile);
      return { expectedTokens: p!.expectedTokens, reserveTokens: p!.upperBound };
    },
    observe() {},
    async close() {
      await batcher.close();
      await lp.dispose();
    },
  };
}

/**
 * The shape of the online learner (src/online/learner.ts `OnlineLearner`), structurally: wiring it is
 * `fromLearner(await OnlineLearner.load(dir, opts))`. Observations are forwarded one by one.
 */
export interface LearnerLike {
  readonly name?: string;
  predictBatch(prompts: string[], opts?: { model?: string; quantile?: number }): Promise<Array<{ expectedTokens: number; reserveTokens: number; promptTokens?: number }>>;
  observe(obs: ProxyObservation[]): unknown;
  close?(): Promise<void>;
  dispose?(): Promise<void>;
}

export function fromLearner(learner: LearnerLike, opts: { quantile?: number } = {}): ProxyPredictor {
  return {
    name: learner.name ?? "online",
    async predict({ model, prompt }) {
      const [p] = await learner.predictBatch([prompt], { ...(model !== undefined ? { model } : {}), ...(opts.quantile !== undefined ? { quantile: opts.quantile } : {}) });
      if (!p) throw new Error("learner returned no prediction");
      return { expectedTokens: p.expectedTokens, reserveTokens: p.reserveTokens, ...(p.promptTokens !== undefined ? { promptTokens: p.promptTokens } : {}) };
    },
    async observe(obs) {
      await learner.observe([obs]);
    },
    close: learner.close ? () => learner.close!() : learner.dispose ? () => learner.dispose!() : undefined,
  };
}
