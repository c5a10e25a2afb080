/**
 * The classical text model: hashed n-gram features (./features.ts) feeding two linear heads trained
 * jointly by AdaGrad SGD on Float32Arrays —
 *  - a softmax over the length buckets (→ `bucket` = argmax, `probabilities`, `upperBound = edges[bucket]`);
 *  - a regression on log(1 + tokens) with a Huber loss of small δ (≈ L1, so it estimates the conditional
 *    median — and the median is what minimises mean |error|, the Sequence-Scheduling "Error").
 * `expectedTokens` comes from the configured point estimate: "regression" (the second head), "mean"
 * (probability-weighted bucket midpoints) or "median" (median of the predicted bucket distribution,
 * interpolated inside its bucket).
 */
import { bucketCount, bucketMidpoint, lowerBound, upperBound, type BucketScheme } from "../../data/buckets.js";
import type { PreparedRecord, PreparedScheme } from "../../data/records.js";
import type { ModelMeta } from "../../predictor/load.js";
import type { Prediction } from "../../predictor/types.js";
import { LenpredError } from "../../util/errors.js";
import { createRng, shuffleInPlace } from "../../util/rng.js";
import { bucketPrediction, float32Bytes, readFloat32File, saveModelDir, SyncPredictor } from "../common.js";
import { extractFeatures, parseFeatureConfig, type NgramFeatureConfig, type SparseVector } from "./features.js";

export const POINT_ESTIMATES = ["regression", "mean", "median"] as const;
export type PointEstimate = (typeof POINT_ESTIMATES)[number];

export interface NgramTrainOptions {
  features: NgramFeatureConfig;
  epochs: number;
  /** AdaGrad base learning rate. */
  lr: number;
  /** L2 penalty applied to the weights an example touches (lazy). */
  l2: number;
  /** Huber δ of the log-length regression (small = median regression). */
  huberDelta: number;
  point: PointEstimate;
  seed: number;
}

export const DEFAULT_TRAIN: Omit<NgramTrainOptions, "features"> = { epochs: 4, lr: 0.1, l2: 1e-6, huberDelta: 0.05, point: "regression", seed: 1 };

const WEIGHTS_FILE = "weights.f32";

export class NgramPredictor extends SyncPredictor {
  readonly name = "ngram";
  readonly k: number;
  readonly dim: number;
  constructor(
    readonly buckets: BucketScheme,
    readonly tokenizer: string,
    readonly features: NgramFeatureConfig,
    public point: PointEstimate,
    /** Classifier weights, feature-major: W[f * k + c]; then biases. */
    readonly W: Float32Array,
    readonly bc: Float32Array,
    /** Regression weights and bias on log(1 + tokens). */
    readonly R: Float32Array,
    readonly br: Float32Array,
  ) {
    super();
    this.k = bucketCount(buckets);
    this.dim = 1 << features.hashBits;
  }

  featurize(prompt: string): SparseVector {
    return extractFeatures(prompt, this.features);
  }

  /** Bucket probabilities (softmax) into `out`. */
  probs(x: SparseVector, out: Float64Array): void {
    const k = this.k;
    for (let c = 0; c < k; c++) out[c] = this.bc[c]!;
    for (let j = 0; j < x.idx.length; j++) {
      const base = x.idx[j]! * k, v = x.val[j]!;
      for (let c = 0; c < k; c++) out[c] += v * this.W[base + c]!;
    }
    softmaxInPlace(out);
  }

  regress(x: SparseVector): number {
    let s = this.br[0]!;
    for (let j = 0; j < x.idx.length; j++) s += x.val[j]! * this.R[x.idx[j]!]!;
    return s;
  }

  predictVector(x: SparseVector): Prediction {
    const p = new Float64Array(this.k);
    this.probs(x, p);
    let best = 0;
    for (let c = 1; c < this.k; c++) if (p[c]! > p[best]!) best = c;
    let est: number;
    if (this.point === "regression") est = Math.max(0, Math.expm1(this.regress(x)));
    else if (this.point === "mean") est = p.reduce((s, pc, c) => s + pc * bucketMidpoint(this.buckets, c), 0);
    else est = distributionMedian(this.buckets, p);
    return bucketPrediction(this.buckets, best, est, Array.from(p));
  }

  predictSync(prompt: string): Prediction {
    return this.predictVector(this.featurize(prompt));
  }

  meta(extra: Record<string, unknown> = {}): ModelMeta {
    return { kind: "ngram", buckets: this.buckets, tokenizer: this.tokenizer, features: this.features, point: this.point, weightsFile: WEIGHTS_FILE, ...extra };
  }

  save(dir: string, extra: Record<string, unknown> = {}): Promise<void> {
    return saveModelDir(dir, this.meta(extra), { [WEIGHTS_FILE]: float32Bytes(this.W, this.bc, this.R, this.br) });
  }

  static async load(meta: ModelMeta, dir: string): Promise<NgramPredictor> {
    let features: NgramFeatureConfig;
    try {
      features = parseFeatureConfig(meta.features);
    } catch (e) {
      throw new LenpredError((e as Error).message, { file: `${dir}/lenpred.json`, field: "features" });
    }
    const point = meta.point as PointEstimate;
    if (!POINT_ESTIMATES.includes(point)) throw new LenpredError(`unknown point estimate '${String(point)}' (expected ${POINT_ESTIMATES.join(", ")})`, { file: `${dir}/lenpred.json`, field: "point" });
    const k = bucketCount(meta.buckets), d = 1 << features.hashBits;
    const all = await readFloat32File(dir, WEIGHTS_FILE, d * k + k + d + 1);
    return new NgramPredictor(meta.buckets, meta.tokenizer, features, point,
      all.subarray(0, d * k), all.subarray(d * k, d * k + k), all.subarray(d * k + k, d * k + k + d), all.subarray(d * k + k + d));
  }
}

export function softmaxInPlace(z: Float64Array): void {
  let m = -Infinity;
  for (const v of z) if (v > m) m = v;
  let s = 0;
  for (let c = 0; c < z.length; c++) s += z[c] = Math.exp(z[c]! - m);
  for (let c = 0; c < z.length; c++) z[c]! /= s;
}

/** Median of a distribution over buckets, assuming mass is uniform inside each bucket. */
export function distributionMedian(s: BucketScheme, p: ArrayLike<number>): number {
  let cum = 0;
  for (let c = 0; c < p.length; c++) {
    const pc = p[c]!;
    if (cum + pc >= 0.5 && pc > 0) {
      const lo = lowerBound(s, c), hi = upperBound(s, c);
      return lo + ((0.5 - cum) / pc) * (hi - lo);
    }
    cum += pc;
  }
  return upperBound(s, p.length - 1);
}

export interface EpochInfo {
  epoch: number;
  /** Mean training cross-entropy and mean |log-length error| over the epoch. */
  xent: number;
  logMae: number;
}

export function trainNgram(
  train: readonly PreparedRecord[],
  scheme: PreparedScheme,
  opts: NgramTrainOptions,
  hooks: { onFeaturized?: () => void; onEpoch?: (e: EpochInfo) => void; onStep?: (done: number) => void } = {},
): NgramPredictor {
  if (train.length === 0) throw new LenpredError("no training records");
  const k = bucketCount(scheme.buckets);
  const d = 1 << opts.features.hashBits;
  const xs = train.map((r) => extractFeatures(r.prompt, opts.features));
  hooks.onFeaturized?.();
  const ys = train.map((r) => r.output_length_bucket);
  const ts = train.map((r) => Math.log1p(r.output_tokens));

  const W = new Float32Array(d * k), GW = new Float32Array(d * k);
  const bc = new Float32Array(k), Gbc = new Float32Array(k);
  const R = new Float32Array(d), GR = new Float32Array(d);
  const br = new Float32Array(1), Gbr = new Float32Array(1);
  // Start from the priors so early updates only learn what the text adds.
  const counts = new Float64Array(k);
  for (const y of ys) counts[y]!++;
  for (let c = 0; c < k; c++) bc[c] = Math.log((counts[c]! + 1) / (train.length + k));
  br[0] = medianOf(ts);

  const eps = 1e-8, lr = opts.lr, l2 = opts.l2, delta = opts.huberDelta;
  const order = Array.from({ length: train.length }, (_, i) => i);
  const rng = createRng(opts.seed);
  const p = new Float64Array(k);
  const tmp = new NgramPredictor(scheme.buckets, scheme.tokenizer, opts.features, opts.point, W, bc, R, br);
  for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    shuffleInPlace(order, rng);
    let xent = 0, logMae = 0, step = 0;
    for (const i of order) {
      const x = xs[i]!, y = ys[i]!;
      tmp.probs(x, p);
      xent -= Math.log(Math.max(p[y]!, 1e-12));
      // classifier: gradient of cross-entropy wrt logits is p − onehot(y)
      for (let c = 0; c < k; c++) {
        const g = p[c]! - (c === y ? 1 : 0);
        Gbc[c]! += g * g;
        bc[c]! -= (lr * g) / Math.sqrt(Gbc[c]! + eps);
        if (g === 0) continue;
        for (let j = 0; j < x.idx.length; j++) {
          const w = x.idx[j]! * k + c;
          const gw = g * x.val[j]! + l2 * W[w]!;
          GW[w]! += gw * gw;
          W[w]! -= (lr * gw) / Math.sqrt(GW[w]! + eps);
        }
      }
      // regression: Huber(δ) on log length, gradient clipped to ±1 beyond δ
      const r = tmp.regress(x) - ts[i]!;
      logMae += Math.abs(r);
      const g = Math.max(-1, Math.min(1, r / delta));
      Gbr[0]! += g * g;
      br[0]! -= (lr * g) / Math.sqrt(Gbr[0]! + eps);
      if (g !== 0) {
        for (let j = 0; j < x.idx.length; j++) {
          const f = x.idx[j]!;
          const gw = g * x.val[j]! + l2 * R[f]!;
          GR[f]! += gw * gw;
          R[f]! -= (lr * gw) / Math.sqrt(GR[f]! + eps);
        }
      }
      if (++step % 2048 === 0) hooks.onStep?.((epoch - 1) * train.length + step);
    }
    hooks.onStep?.(epoch * train.length);
    hooks.onEpoch?.({ epoch, xent: xent / train.length, logMae: logMae / train.length });
  }
  return tmp;
}

function medianOf(v: number[]): number {
  const s = Float64Array.from(v).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
