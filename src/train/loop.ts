/**
 * The training loop, independent of the engine behind `TrainableModel`: length-grouped shuffled batches,
 * linear warmup/decay schedule, per-epoch validation, best-checkpoint tracking, early stopping, and
 * checkpoints that let `--resume` continue bit-exactly (parameters, AdamW moments and step, shuffling RNG,
 * the model's dropout RNG, and the position inside the epoch). An abort (Ctrl-C) stops after the current
 * step and leaves a resumable checkpoint.
 */
import { performance } from "node:perf_hooks";
import { bucketMidpoint, type BucketScheme } from "../data/buckets.js";
import type { HeadSpec } from "../model/decode.js";
import { LenpredError } from "../util/errors.js";
import { createRng } from "../util/rng.js";
import { linearWarmupDecay } from "../engine/schedule.js";
import { collate, lengthGroupedBatches, realTokens, type Example } from "./batching.js";
import { RUN_DEFINING, warmupSteps, type TrainOptions } from "./options.js";
import { saveRun } from "./run-dir.js";
import type { EpochRecord, RunState } from "./run-state.js";
import type { NamedTensors } from "../engine/tensors.js";
import type { TrainableModel } from "../model/trainable.js";
import { isBetter, validate, type EpochMetrics } from "./validate.js";

export interface TrainingData {
  train: Example[];
  val: Example[];
  scheme: BucketScheme;
  padId: number;
}

/** Facts about the best checkpoint that the model writer records in lenpred.json. */
export interface BestModelInfo {
  head: HeadSpec;
  maxLength: number;
  epoch: number;
  metrics: EpochMetrics;
}

export interface StepProgress {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  globalStep: number;
  totalSteps: number;
  /** Mean train loss so far in this epoch. */
  loss: number;
  lr: number;
  /** Real (non-padding) tokens per second since this epoch (or this process) started. */
  tokensPerSecond: number;
}

export interface TrainHooks {
  /** A freshly initialised model (seeded from the options). */
  createModel(): Promise<TrainableModel>;
  /** Write the inference model directory files (weights, config, lenpred.json, export) into `dir`. */
  writeModel(dir: string, model: TrainableModel, info: BestModelInfo): Promise<void>;
  signal?: AbortSignal;
  onEpochStart?(epoch: number, batches: number, resumedAt: number): void;
  onStep?(p: StepProgress): void;
  onValidation?(done: number, total: number): void;
  onEpoch?(rec: EpochRecord, state: RunState): void;
  onCheckpoint?(reason: "interval" | "epoch" | "interrupt" | "final"): void;
  /** Clock in ms (tests inject one to trigger interval checkpoints). */
  now?(): number;
}

export interface TrainResult {
  status: RunState["status"];
  state: RunState;
}

export function headSpecOf(o: Pick<TrainOptions, "head" | "quantiles">, data?: Pick<TrainingData, "train" | "scheme">): HeadSpec {
  if (o.head === "quantile") return { head: "quantile", quantiles: [...o.quantiles] };
  if (o.head === "classification" && data) return { head: o.head, bucketMeans: bucketMeans(data.train, data.scheme) };
  return { head: o.head };
}

/** Mean output length of the training examples in each bucket (the midpoint for an empty bucket). */
export function bucketMeans(train: readonly Example[], scheme: BucketScheme): number[] {
  const k = scheme.edges.length;
  const sum = new Float64Array(k), count = new Float64Array(k);
  for (const e of train) {
    sum[e.bucket]! += e.outputTokens;
    count[e.bucket]!++;
  }
  return Array.from({ length: k }, (_, i) => (count[i]! > 0 ? sum[i]! / count[i]! : bucketMidpoint(scheme, i)));
}

/** FNV-1a over the tokenized data: cheap, and catches a resume on different data or tokenization. */
export function fingerprint(data: TrainingData): string {
  let h = 0x811c9dc5;
  const mix = (x: number) => {
    h ^= x & 0xffff; h = Math.imul(h, 0x01000193);
    h ^= x >>> 16; h = Math.imul(h, 0x01000193);
  };
  for (const e of data.train) {
    mix(e.ids.length); mix(e.bucket); mix(e.outputTokens);
    for (let i = 0; i < e.ids.length; i++) mix(e.ids[i]!);
  }
  mix(data.val.length);
  return `${data.train.length}:${data.val.length}:${(h >>> 0).toString(16)}`;
}

export async function train(
  opts: TrainOptions, data: TrainingData, hooks: TrainHooks,
  resume?: { state: RunState; optimizer: NamedTensors },
): Promise<TrainResult> {
  if (data.train.length === 0) throw new LenpredError("the training split is empty", { file: opts.data });
  if (data.val.length === 0) throw new LenpredError("the validation split is empty (needed for per-epoch metrics and the best checkpoint)", { file: opts.data });
  const now = hooks.now ?? (() => performance.now());
  const spec = headSpecOf(opts, data);
  const stepsPerEpoch = Math.ceil(data.train.length / opts.batchSize);
  const totalSteps = stepsPerEpoch * opts.epochs;
  const warm = warmupSteps(opts, totalSteps);
  const fp = fingerprint(data);
  const lengths = data.train.map((e) => e.ids.length);

  let state: RunState;
  const model = await hooks.createModel();
  try {
    if (resume) {
      state = resume.state;
      for (const k of RUN_DEFINING) {
        if (JSON.stringify(state.options[k]) !== JSON.stringify(opts[k])) {
          throw new LenpredError(`cannot resume with a different --${k} (checkpoint has ${JSON.stringify(state.options[k])}, given ${JSON.stringify(opts[k])})`);
        }
      }
      if (state.dataFingerprint !== fp) throw new LenpredError(`the prepared data changed since the checkpoint was written (fingerprint ${state.dataFingerprint} → ${fp}); resume needs the same data`, { file: opts.data });
      if (state.totalSteps !== totalSteps) throw new LenpredError(`cannot resume with a different --epochs (checkpoint has ${state.options.epochs})`);
      model.loadOptimizerState({ step: state.optimizerStep, tensors: resume.optimizer });
      if (state.modelRandomState !== undefined) model.setRandomState?.(state.modelRandomState);
      state = { ...state, options: { ...opts }, status: "running" };
    } else {
      state = {
        version: 1, options: { ...opts }, dataFingerprint: fp, stepsPerEpoch, totalSteps, epoch: 0, batchInEpoch: 0,
        globalStep: 0, epochRngState: createRng(opts.seed).state(), optimizerStep: 0, lossSum: 0, lossCount: 0,
        epochTokens: 0, epochSeconds: 0, history: [], badEpochs: 0, elapsedSeconds: 0, status: "running",
      };
    }

    const snapshot = (): NamedTensors => {
      const s = model.optimizerState();
      state.optimizerStep = s.step;
      state.modelRandomState = model.randomState?.();
      return s.tensors;
    };
    let lastSave = now();
    const save = async (reason: "interval" | "epoch" | "interrupt" | "final", bestInfo?: BestModelInfo, keepState = true) => {
      await saveRun(opts.out, {
        state,
        optimizer: keepState ? snapshot() : undefined,
        writeModel: bestInfo ? (dir) => hooks.writeModel(dir, model, bestInfo) : undefined,
      });
      lastSave = now();
      hooks.onCheckpoint?.(reason);
    };

    // HF get_linear_schedule_with_warmup, evaluated at the 0-based index of the step about to be taken.
    const schedule = linearWarmupDecay({ peakLr: opts.lr, warmupSteps: warm, totalSteps });
    let sessionStart = now();
    while (state.epoch < opts.epochs) {
      const rng = createRng(opts.seed, state.epochRngState);
      const batches = lengthGroupedBatches(lengths, opts.batchSize, rng);
      const nextEpochRng = rng.state();
      hooks.onEpochStart?.(state.epoch, batches.length, state.batchInEpoch);
      let segStart = now(), segTokens = 0;
      while (state.batchInEpoch < batches.length) {
        const batch = collate(data.train, batches[state.batchInEpoch]!, opts.head, data.padId);
        const lr = schedule(state.globalStep);
        const loss = await model.trainStep(batch, { learningRate: lr, weightDecay: opts.weightDecay, maxGradNorm: opts.maxGradNorm });
        if (!Number.isFinite(loss)) throw new LenpredError(`training diverged: loss is ${loss} at step ${state.globalStep} (try a lower --lr)`);
        const tokens = realTokens(batch);
        state.lossSum += loss * batch.batch;
        state.lossCount += batch.batch;
        state.epochTokens += tokens;
        segTokens += tokens;
        state.batchInEpoch++;
        state.globalStep++;
        const t = now();
        hooks.onStep?.({
          epoch: state.epoch, epochs: opts.epochs, batch: state.batchInEpoch, batches: batches.length,
          globalStep: state.globalStep, totalSteps, loss: state.lossSum / state.lossCount, lr,
          tokensPerSecond: segTokens / Math.max(1e-9, (t - segStart) / 1000),
        });
        if (hooks.signal?.aborted || (opts.checkpointMinutes > 0 && t - lastSave >= opts.checkpointMinutes * 60_000 && state.batchInEpoch < batches.length)) {
          const dt = (t - segStart) / 1000;
          state.epochSeconds += dt;
          state.elapsedSeconds += (t - sessionStart) / 1000;
          segStart = sessionStart = t;
          segTokens = 0;
          if (hooks.signal?.aborted) {
            state.status = "interrupted";
            await save("interrupt");
            return { status: state.status, state };
          }
          await save("interval");
        }
      }
      const trainEnd = now();
      state.epochSeconds += (trainEnd - segStart) / 1000;
      const metrics = await validate(model, data.val, spec, data.scheme, {
        // Inference has no optimizer step per batch, so larger batches are cheaper (padding stays small: sorted).
        batchSize: Math.max(64, opts.batchSize), padId: data.padId, onBatch: hooks.onValidation,
      });
      const improved = isBetter(opts.monitor, metrics, state.best?.metrics);
      const rec: EpochRecord = {
        epoch: state.epoch + 1, trainLoss: state.lossSum / Math.max(1, state.lossCount), ...metrics,
        seconds: state.epochSeconds, tokensPerSecond: state.epochTokens / Math.max(1e-9, state.epochSeconds), best: improved,
      };
      state.history.push(rec);
      if (improved) {
        state.best = { epoch: rec.epoch, metrics };
        state.badEpochs = 0;
      } else state.badEpochs++;
      state.epoch++;
      state.batchInEpoch = 0;
      state.epochRngState = nextEpochRng;
      state.lossSum = state.lossCount = state.epochTokens = state.epochSeconds = 0;
      const t = now();
      state.elapsedSeconds += (t - sessionStart) / 1000;
      sessionStart = t;
      const early = opts.patience > 0 && state.badEpochs >= opts.patience && state.epoch < opts.epochs;
      const last = early || state.epoch >= opts.epochs;
      const bestInfo = improved ? { head: spec, maxLength: opts.maxLength, epoch: rec.epoch, metrics } : undefined;
      hooks.onEpoch?.(rec, state);
      if (last) {
        state.status = early ? "early-stopped" : "completed";
        await save("final", bestInfo, opts.keepCheckpoint);
        return { status: state.status, state };
      }
      if (hooks.signal?.aborted) state.status = "interrupted";
      await save(hooks.signal?.aborted ? "interrupt" : "epoch", bestInfo);
      if (hooks.signal?.aborted) return { status: state.status, state };
    }
    // Resumed a run whose epochs were all done but whose final save was interrupted.
    state.status = "completed";
    await save("final", undefined, opts.keepCheckpoint);
    return { status: state.status, state };
  } finally {
    await model.dispose();
  }
}
