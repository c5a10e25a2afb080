/**
 * What a training run records (checkpoint/state.json, training.json): written by run-dir.ts, rendered by
 * model-card.ts, advanced by loop.ts. A module of its own so that those import it, not each other.
 */
import type { TrainOptions } from "./options.js";
import type { EpochMetrics } from "./validate.js";

export interface EpochRecord extends EpochMetrics {
  epoch: number;
  trainLoss: number;
  seconds: number;
  tokensPerSecond: number;
  best: boolean;
}

export interface RunState {
  version: 1;
  options: TrainOptions;
  /** Fingerprint of the tokenized training data, so a resume on different data is refused. */
  dataFingerprint: string;
  stepsPerEpoch: number;
  totalSteps: number;
  /** 0-based epoch in progress (= epochs done when batchInEpoch is 0). */
  epoch: number;
  /** Batches of `epoch` already trained. */
  batchInEpoch: number;
  globalStep: number;
  /** Shuffling RNG state at the start of `epoch` (its batch order is recomputed from it). */
  epochRngState: object;
  /** The model's own RNG (dropout), if it has one. */
  modelRandomState?: unknown;
  optimizerStep: number;
  /** Running train-loss sum / count and real tokens within `epoch`. */
  lossSum: number;
  lossCount: number;
  epochTokens: number;
  epochSeconds: number;
  history: EpochRecord[];
  best?: { epoch: number; metrics: EpochMetrics };
  badEpochs: number;
  elapsedSeconds: number;
  status: "running" | "interrupted" | "early-stopped" | "completed";
}
