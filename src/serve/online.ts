/**
 * Online learning mounted on `lenpred serve` (docs/online.md, "HTTP API"): an `OnlineLearner` on the main
 * thread wraps the base predictor. Its per-target calibration is a few hundred arithmetic operations per
 * prediction; base inference stays where the base runs (the worker thread):
 *
 *  - predictions: learner → micro-batcher → base (the batcher's queue limits and time budget apply);
 *  - learning: learner → base directly (its own batches of ≤ 256, one at a time), so a full predict queue
 *    never refuses learning, and inference never runs on the event loop;
 *  - retraining: its child process is stopped while the micro-batcher has predictions queued or running
 *    (`yieldGate`, fed by the batcher's busy transitions).
 *
 * A worker-thread base sends the n-gram member's features with each prediction, so the learner can learn a
 * per-target readout without the n-gram in its thread. `OnlineService` (durable store, snapshot, lock) does
 * not depend on any of this: `lenpred proxy` can open one in-process without the HTTP layer.
 */
import { OnlineLearner, readValidationMae } from "../online/learner.js";
import { findFastMember } from "../online/fast-member.js";
import { DEFAULT_OBSERVATION_LIMITS } from "../online/observation.js";
import { OnlineService } from "../online/service.js";
import type { RetrainConfig } from "../online/retrain.js";
import type { Prediction, Predictor } from "../model/prediction.js";
import type { YieldGate } from "../util/yield-gate.js";
import type { MicroBatcher } from "./batcher.js";
import type { ServeLimits } from "./limits.js";
import { WorkerPredictor, type BasePredictor } from "./worker-predictor.js";

export interface ServeOnlineOptions {
  /** Durable observations, snapshots and the writer lock; without it learning is in memory only. */
  stateDir?: string;
  /** Reservation level of `reserveTokens` (default 0.9). */
  quantile?: number;
  /** Most target models learned (default 64); observations that would add one more get 400 on `model`. */
  maxModels?: number;
  /** Retrain a target's DistilBERT member every N observations (0 = off; needs a state dir and a base with one). */
  retrainEvery?: number;
  /** Writes (`POST /v1/observe`) need `Authorization: Bearer <token>` when set. */
  observeToken?: string;
  /** Most observations in one `POST /v1/observe` (default 1000). */
  maxObservations?: number;
  /** Most observations accepted but not yet learned; beyond it `POST /v1/observe` answers 503 + Retry-After (default 50,000). */
  maxBacklog?: number;
  /** The base's model directory when the predictor is injected (`--no-worker`): retraining starts from its DistilBERT member. */
  modelDir?: string;
  /** Retraining settings beyond `retrainEvery` (epochs, hold-out size...); given, `OnlineService.retrain` works even with retrainEvery 0. */
  retrain?: Partial<RetrainConfig>;
  /** Write a snapshot after this many learned observations (OnlineService's default 5000). */
  snapshotEvery?: number;
}

export const DEFAULT_MAX_BACKLOG = 50_000;

/** Open the learner and its service over a loaded base; predictions go through `batcher`. */
export async function openOnline(base: BasePredictor, batcher: MicroBatcher, o: ServeOnlineOptions, limits: ServeLimits, modelSpec?: string, yieldGate?: YieldGate): Promise<OnlineService> {
  // A bundled name or hub id resolves to the directory the worker loaded (already downloaded by then).
  modelSpec = o.modelDir ?? modelSpec;
  const modelDir = modelSpec === undefined ? undefined : await (await import("../predictor/bundled.js")).resolveModelDir(modelSpec).catch(() => undefined);
  // What the learner predicts through: the micro-batcher (no quantile: the learner reserves itself and the
  // route decodes a request's quantile). `inner` lets the learner find in-process ensemble members.
  const batched = asPredictor(base, (prompts) => batcher.submit(prompts, undefined));
  const fastMember = base instanceof WorkerPredictor ? base.fast : findFastMember(base as Predictor);
  const learner = new OnlineLearner(batched, {
    quantile: o.quantile ?? 0.9,
    maxModels: o.maxModels ?? 64,
    validationMae: modelDir === undefined ? undefined : await readValidationMae(modelDir),
    limits: { ...DEFAULT_OBSERVATION_LIMITS, maxPromptChars: limits.maxPromptChars, maxBatch: o.maxObservations ?? DEFAULT_OBSERVATION_LIMITS.maxBatch },
    ...(fastMember ? { fastMember } : {}),
    // A worker base runs its DistilBERT member (and retrained ones) there: the learner only combines their outputs.
    ...(base instanceof WorkerPredictor && base.slow ? { slowMember: base.slow } : {}),
    learnBase: asPredictor(base, (prompts) => base.predictBatch(prompts)),
  });
  if (modelDir !== undefined) learner.modelDir = modelDir;
  const every = o.retrainEvery ?? 0;
  return OnlineService.open(learner, {
    ...(o.stateDir ? { stateDir: o.stateDir } : {}),
    ...(o.snapshotEvery ? { snapshotEvery: o.snapshotEvery } : {}),
    retrain: every > 0 || o.retrain ? { ...o.retrain, every } : false,
    ...(base instanceof WorkerPredictor ? { loadMember: (dir: string) => base.loadMember(dir) } : {}),
    ...(yieldGate ? { yieldGate } : {}),
  });
}

/** A `Predictor` view of a base predictor through `predictBatch`; `inner` lets the learner find in-process members. */
function asPredictor(base: BasePredictor, predictBatch: (prompts: string[]) => Promise<Prediction[]>): Predictor & { inner: BasePredictor } {
  return {
    name: base.name,
    buckets: base.buckets,
    inner: base,
    predictBatch,
    predict: async (prompt) => (await predictBatch([prompt]))[0]!,
  };
}
