/**
 * What the training loop needs from a model, so the loop (batching, schedule, checkpoints, resume, early
 * stopping) is independent of the engine that runs the maths.
 */
import type { NamedTensors } from "../engine/tensors.js";

/** A padded batch, row-major [batch, seqLen]. */
export interface TokenBatch {
  batch: number;
  seqLen: number;
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
}

export interface LabeledBatch extends TokenBatch {
  /** Class index per row (classification) … */
  labels?: Int32Array;
  /** … or a float target per row (regression on log length / quantile heads). */
  targets?: Float32Array;
}

export interface TrainStepOptions {
  learningRate: number;
  weightDecay: number;
  /** Clip the global gradient norm to this value (0 or undefined = no clipping). */
  maxGradNorm?: number;
}

export interface TrainableModel {
  /** forward + loss + backward + AdamW update; returns the mean loss of the batch (before the update). */
  trainStep(batch: LabeledBatch, opts: TrainStepOptions): Promise<number>;
  /** Inference (dropout off): logits/outputs row-major [batch, numOutputs]. */
  forward(batch: TokenBatch): Promise<Float32Array>;
  readonly numOutputs: number;
  /** Model parameters under HF names. */
  parameters(): NamedTensors;
  /** Everything needed to resume exactly: parameters, AdamW moments, step counter. */
  optimizerState(): { step: number; tensors: NamedTensors };
  loadOptimizerState(state: { step: number; tensors: NamedTensors }): void;
  /** Release native resources. */
  dispose(): Promise<void>;
}

/**
 * Optional RNG access for exact resume: a model whose training step draws random numbers (dropout) exposes
 * its generator state so a checkpoint can restore it. Models without randomness leave these undefined.
 */
export interface TrainableModel {
  randomState?(): unknown;
  setRandomState?(state: unknown): void;
}
