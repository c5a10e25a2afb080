/**
 * Resolved options of one training run. Defaults follow the S³ reference recipe (max input 512, batch 16,
 * 10 epochs, lr 2e-5, AdamW, seed 42; HF Trainer defaults for the rest: no warmup, no weight decay, grad-norm
 * clip 1.0). They are stored in the checkpoint so that `--resume` continues with exactly the same settings.
 */
import { HEAD_KINDS, type HeadKind } from "../model/config.js";
import { LenpredError } from "../util/errors.js";

/** Validation metrics that can pick the best checkpoint. */
export const MONITORS = ["val_loss", "accuracy", "mae"] as const;
export type Monitor = (typeof MONITORS)[number];
/** Storage dtypes of the saved weights. */
export const WEIGHT_DTYPES = ["F32", "F16"] as const;

export interface TrainOptions {
  /** Prepared data directory (train/val.jsonl + scheme.json). */
  data: string;
  /** Model directory to write (the best checkpoint; `checkpoint/` inside while training). */
  out: string;
  /** Preset name (tiny|small|base) or a config.json path; ignored with `init`. */
  config: string;
  /** HF DistilBERT directory with pretrained weights to start from. */
  init?: string;
  /** Input tokenizer.json (default: the one in `init`, else the bundled bert-base-uncased). */
  tokenizer?: string;
  head: HeadKind;
  /** Quantile levels of the quantile head. */
  quantiles: number[];
  epochs: number;
  lr: number;
  /** Warmup: a fraction of all steps when < 1, else a number of steps. */
  warmup: number;
  weightDecay: number;
  batchSize: number;
  maxLength: number;
  maxGradNorm: number;
  seed: number;
  /** Stop after this many epochs without improvement of `monitor` (0 = never stop early). */
  patience: number;
  monitor: Monitor;
  /** Use only the first N records of a split (quick runs); undefined = all. */
  maxTrainRecords?: number;
  maxValRecords?: number;
  /** Also checkpoint mid-epoch every this many minutes (0 = only at epoch ends), bounding what kill -9 loses. */
  checkpointMinutes: number;
  /** Keep `checkpoint/` after a finished run (default: remove it, leaving a clean model directory). */
  keepCheckpoint: boolean;
  /** Storage dtype of the saved model weights (F16 halves the size of committed models). */
  dtype: (typeof WEIGHT_DTYPES)[number];
  /** ONNX opset of the exported onnx/model.onnx (undefined = 20; 17 for older runtimes and checkers). */
  opset?: 17 | 20;
  /** onnxruntime/engine threads. */
  threads: number;
  /** Refuse a model whose estimated training memory exceeds this many GB (undefined = physical memory). */
  maxMemory?: number;
}

export const DEFAULTS: Omit<TrainOptions, "data" | "out"> = {
  config: "tiny", head: "classification", quantiles: [0.5, 0.9], epochs: 10, lr: 2e-5, warmup: 0, weightDecay: 0,
  batchSize: 16, maxLength: 512, maxGradNorm: 1, seed: 42, patience: 3, monitor: "val_loss", checkpointMinutes: 10,
  keepCheckpoint: false, dtype: "F32", threads: 2,
};

/**
 * Options that change the maths of a run; a resumed run must not change them. (The data directory may move:
 * the checkpoint's fingerprint of the tokenized data decides whether it is the same data.)
 */
export const RUN_DEFINING: (keyof TrainOptions)[] = [
  "config", "init", "tokenizer", "head", "quantiles", "lr", "warmup", "weightDecay", "batchSize", "maxLength",
  "maxGradNorm", "seed", "maxTrainRecords", "maxValRecords",
];

export function validateOptions(o: TrainOptions): TrainOptions {
  const posInt = (f: keyof TrainOptions) => {
    const v = o[f];
    if (!Number.isInteger(v) || (v as number) <= 0) throw new LenpredError(`--${kebab(f)} must be a positive integer, got ${String(v)}`);
  };
  const nonNeg = (f: keyof TrainOptions) => {
    const v = o[f] as number;
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw new LenpredError(`--${kebab(f)} must be a non-negative number, got ${String(v)}`);
  };
  posInt("epochs"); posInt("batchSize"); posInt("maxLength");
  if (o.maxLength < 3) throw new LenpredError("--max-length must be at least 3 (room for [CLS] x [SEP])");
  if (o.maxTrainRecords !== undefined) posInt("maxTrainRecords");
  if (o.maxValRecords !== undefined) posInt("maxValRecords");
  if (!(o.lr > 0 && Number.isFinite(o.lr))) throw new LenpredError(`--lr must be a positive number, got ${o.lr}`);
  nonNeg("warmup"); nonNeg("weightDecay"); nonNeg("maxGradNorm"); nonNeg("checkpointMinutes");
  if (!Number.isInteger(o.patience) || o.patience < 0) throw new LenpredError(`--patience must be a non-negative integer, got ${o.patience}`);
  if (o.maxMemory !== undefined && !(o.maxMemory > 0 && Number.isFinite(o.maxMemory))) throw new LenpredError(`--max-memory must be a positive number of GB, got ${o.maxMemory}`);
  if (!Number.isInteger(o.seed)) throw new LenpredError(`--seed must be an integer, got ${o.seed}`);
  if (!(HEAD_KINDS as readonly string[]).includes(o.head)) throw new LenpredError(`--head must be ${orList(HEAD_KINDS)}, got '${o.head}'`);
  if (!(MONITORS as readonly string[]).includes(o.monitor)) throw new LenpredError(`--monitor must be ${orList(MONITORS)}, got '${o.monitor}'`);
  if (o.head === "quantile") {
    if (o.quantiles.length === 0 || o.quantiles.some((q, i) => !(q > 0 && q < 1) || (i > 0 && q <= o.quantiles[i - 1]!))) {
      throw new LenpredError(`--quantiles must be increasing levels in (0, 1), got ${o.quantiles.join(",")}`);
    }
  }
  return o;
}

/** Warmup in steps for a run of `totalSteps`. */
export function warmupSteps(o: Pick<TrainOptions, "warmup">, totalSteps: number): number {
  return o.warmup < 1 ? Math.round(o.warmup * totalSteps) : Math.round(o.warmup);
}

/** "a, b or c" */
function orList(xs: readonly string[]): string {
  return xs.length < 2 ? xs.join("") : `${xs.slice(0, -1).join(", ")} or ${xs[xs.length - 1]}`;
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

/** The size check of a run's model (done before anything is allocated; see checkModelSize). */
export function memoryCheck(o: Pick<TrainOptions, "batchSize" | "maxLength" | "maxMemory">): { maxBytes?: number; training: { batchSize: number; seqLen: number }; knob: string } {
  return { ...(o.maxMemory !== undefined ? { maxBytes: o.maxMemory * 2 ** 30 } : {}), training: { batchSize: o.batchSize, seqLen: o.maxLength }, knob: "--max-memory <GB>" };
}
