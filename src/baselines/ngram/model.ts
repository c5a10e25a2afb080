/**
 * The classical text model: hashed n-gram features (./features.ts), optionally through one ReLU hidden layer
 * (an embedding bag, default 64 wide), feeding two heads trained jointly by AdaGrad SGD on Float32Arrays —
 *  - a softmax over the length buckets (→ `bucket` = argmax, `probabilities`, `upperBound = edges[bucket]`);
 *  - a regression on log(1 + tokens) with a Huber loss of small δ (≈ L1, so it estimates the conditional
 *    median — and the median is what minimises mean |error|, the Sequence-Scheduling "Error").
 * `expectedTokens` comes from the configured point estimate: "regression" (the second head), "mean"
 * (probability-weighted bucket midpoints) or "median" (median of the predicted bucket distribution,
 * interpolated inside its bucket).
 */
import { bucketCount, bucketMidpoint, lowerBound, upperBound, type BucketScheme } from "../../data/buckets.js";
import type { PreparedRecord, PreparedScheme } from "../../data/records.js";
import { join } from "node:path";
import { META_FILE, type ModelMeta } from "../../model-dir/index.js";
import type { Prediction } from "../../model/prediction.js";
import { LenpredError } from "../../util/errors.js";
import { createRng, shuffleInPlace } from "../../util/rng.js";
import { float32Bytes, readFloat32File, saveModelDir } from "../model-files.js";
import { bucketPrediction, SyncPredictor } from "../sync-predictor.js";
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
  /** Width of the ReLU hidden layer (0 = linear heads on the hashed features). */
  hidden: number;
  /** Start from this model's weights (same features/hidden/buckets), e.g. one trained on a larger related label. */
  init?: NgramPredictor;
  seed: number;
}

export const DEFAULT_TRAIN: Omit<NgramTrainOptions, "features"> = { epochs: 3, lr: 0.05, l2: 1e-6, huberDelta: 0.05, point: "regression", hidden: 64, seed: 1 };

const WEIGHTS_FILE = "weights.f32";

/**
 * Parameters. Linear (`hidden` = 0): heads read the hashed features directly — W[f·k + c], R[f].
 * Hidden layer (`hidden` = H > 0): an embedding bag E[f·H + j] + b1 → ReLU → heads W[j·k + c], R[j]
 * (fastText with a non-linearity: lets features interact, e.g. "write" with "short").
 */
export interface NgramParams {
  hidden: number;
  E?: Float32Array;
  b1?: Float32Array;
  /** Classifier weights: D×k (linear) or H×k (hidden), then biases. */
  W: Float32Array;
  bc: Float32Array;
  /** Regression weights: D (linear) or H (hidden), then bias, on log(1 + tokens). */
  R: Float32Array;
  br: Float32Array;
}

export class NgramPredictor extends SyncPredictor {
  readonly name = "ngram";
  readonly k: number;
  readonly dim: number;
  /** Scratch for the hidden layer (pre-activation and activation), reused across calls. */
  readonly a: Float64Array;
  readonly h: Float64Array;
  constructor(
    readonly buckets: BucketScheme,
    readonly tokenizer: string,
    readonly features: NgramFeatureConfig,
    public point: PointEstimate,
    readonly params: NgramParams,
  ) {
    super();
    this.k = bucketCount(buckets);
    this.dim = 1 << features.hashBits;
    this.a = new Float64Array(params.hidden);
    this.h = new Float64Array(params.hidden);
  }

  featurize(prompt: string): SparseVector {
    return extractFeatures(prompt, this.features);
  }

  /** Bucket probabilities into `out`; returns the log-length regression output. */
  forward(x: SparseVector, out: Float64Array): number {
    const { k } = this;
    const { hidden: H, W, bc, R, br } = this.params;
    for (let c = 0; c < k; c++) out[c] = bc[c]!;
    let reg = br[0]!;
    if (H === 0) {
      for (let j = 0; j < x.idx.length; j++) {
        const f = x.idx[j]!, base = f * k, v = x.val[j]!;
        for (let c = 0; c < k; c++) out[c] += v * W[base + c]!;
        reg += v * R[f]!;
      }
    } else {
      const E = this.params.E!, b1 = this.params.b1!, a = this.a, h = this.h;
      for (let u = 0; u < H; u++) a[u] = b1[u]!;
      for (let j = 0; j < x.idx.length; j++) {
        const base = x.idx[j]! * H, v = x.val[j]!;
        for (let u = 0; u < H; u++) a[u] += v * E[base + u]!;
      }
      for (let u = 0; u < H; u++) {
        const hu = (h[u] = a[u]! > 0 ? a[u]! : 0);
        if (hu === 0) continue;
        for (let c = 0; c < k; c++) out[c] += hu * W[u * k + c]!;
        reg += hu * R[u]!;
      }
    }
    softmaxInPlace(out);
    return reg;
  }

  predictVector(x: SparseVector): Prediction {
    const p = new Float64Array(this.k);
    const reg = this.forward(x, p);
    let best = 0;
    for (let c = 1; c < this.k; c++) if (p[c]! > p[best]!) best = c;
    let est: number;
    if (this.point === "regression") est = Math.max(0, Math.expm1(reg));
    else if (this.point === "mean") est = p.reduce((s, pc, c) => s + pc * bucketMidpoint(this.buckets, c), 0);
    else est = distributionMedian(this.buckets, p);
    return bucketPrediction(this.buckets, best, est, Array.from(p));
  }

  predictSync(prompt: string): Prediction {
    return this.predictVector(this.featurize(prompt));
  }

  meta(extra: Record<string, unknown> = {}): ModelMeta {
    return { kind: "ngram", buckets: this.buckets, tokenizer: this.tokenizer, features: this.features, hidden: this.params.hidden, point: this.point, weightsFile: WEIGHTS_FILE, ...extra };
  }

  save(dir: string, extra: Record<string, unknown> = {}): Promise<void> {
    const p = this.params;
    const arrays = p.hidden ? [p.E!, p.b1!, p.W, p.bc, p.R, p.br] : [p.W, p.bc, p.R, p.br];
    return saveModelDir(dir, this.meta(extra), { [WEIGHTS_FILE]: float32Bytes(...arrays) });
  }

  static async load(meta: ModelMeta, dir: string): Promise<NgramPredictor> {
    const file = join(dir, META_FILE);
    let features: NgramFeatureConfig;
    try {
      features = parseFeatureConfig(meta.features);
    } catch (e) {
      throw new LenpredError((e as Error).message, { file, field: "features" });
    }
    const point = meta.point as PointEstimate;
    if (!POINT_ESTIMATES.includes(point)) throw new LenpredError(`unknown point estimate '${String(point)}' (expected ${POINT_ESTIMATES.join(", ")})`, { file, field: "point" });
    const hidden = meta.hidden ?? 0;
    if (!(Number.isInteger(hidden) && (hidden as number) >= 0 && (hidden as number) <= 1024)) throw new LenpredError(`hidden must be an integer in 0..1024, got ${String(hidden)}`, { file, field: "hidden" });
    const sizes = paramSizes(1 << features.hashBits, bucketCount(meta.buckets), hidden as number);
    const weightsFile = meta.weightsFile ?? WEIGHTS_FILE;
    if (typeof weightsFile !== "string") throw new LenpredError(`expected a file name, got ${JSON.stringify(weightsFile)}`, { file, field: "weightsFile" });
    const all = await readFloat32File(dir, weightsFile, sizes.reduce((s, [, n]) => s + n, 0), { file, field: "weightsFile" });
    const parts: Record<string, Float32Array> = {};
    let o = 0;
    for (const [name, n] of sizes) {
      parts[name] = all.subarray(o, o + n);
      o += n;
    }
    return new NgramPredictor(meta.buckets, meta.tokenizer, features, point, { hidden: hidden as number, E: parts.E, b1: parts.b1, W: parts.W!, bc: parts.bc!, R: parts.R!, br: parts.br! });
  }
}

/** Weight arrays in file order with their lengths. */
function paramSizes(d: number, k: number, hidden: number): [string, number][] {
  return hidden
    ? [["E", d * hidden], ["b1", hidden], ["W", hidden * k], ["bc", k], ["R", hidden], ["br", 1]]
    : [["W", d * k], ["bc", k], ["R", d], ["br", 1]];
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
  const H = opts.hidden;
  const xs = train.map((r) => extractFeatures(r.prompt, opts.features));
  hooks.onFeaturized?.();
  const ys = train.map((r) => r.output_length_bucket);
  const ts = train.map((r) => Math.log1p(r.output_tokens));
  const rng = createRng(opts.seed);

  // Hidden layers need symmetry-breaking random weights; linear heads start at zero.
  const init = (n: number, scale: number) => (scale ? Float32Array.from({ length: n }, () => (rng.next() - 0.5) * 2 * scale) : new Float32Array(n));
  const sizes = paramSizes(d, k, H);
  const params = Object.fromEntries(sizes.map(([name, n]) => [name, init(n, H && ["E", "W", "R"].includes(name) ? 0.1 : 0)])) as unknown as NgramParams;
  params.hidden = H;
  if (opts.init) {
    // Warm start (transfer): copy every weight of a compatible model; the priors below reset the biases.
    const src = opts.init.params;
    if (opts.init.features.hashBits !== opts.features.hashBits || src.hidden !== H || opts.init.k !== k) {
      throw new LenpredError(`--init model is incompatible (hash bits ${opts.init.features.hashBits}, hidden ${src.hidden}, ${opts.init.k} buckets; need ${opts.features.hashBits}, ${H}, ${k})`);
    }
    for (const [name] of sizes) (params as unknown as Record<string, Float32Array>)[name]!.set((src as unknown as Record<string, Float32Array>)[name]!);
  }
  const G = Object.fromEntries(sizes.map(([name, n]) => [name, new Float32Array(n)])) as Record<string, Float32Array>;
  // Start from the priors so early updates only learn what the text adds.
  const counts = new Float64Array(k);
  for (const y of ys) counts[y]!++;
  for (let c = 0; c < k; c++) params.bc[c] = Math.log((counts[c]! + 1) / (train.length + k));
  params.br[0] = medianOf(ts);

  const eps = 1e-8, lr = opts.lr, l2 = opts.l2, delta = opts.huberDelta;
  /** AdaGrad step on one weight (with the lazy L2 term on touched weights). */
  const step = (w: Float32Array, g: Float32Array, i: number, grad: number) => {
    const gw = grad + l2 * w[i]!;
    g[i]! += gw * gw;
    w[i]! -= (lr * gw) / Math.sqrt(g[i]! + eps);
  };
  const order = Array.from({ length: train.length }, (_, i) => i);
  const p = new Float64Array(k);
  const gh = new Float64Array(H);
  const model = new NgramPredictor(scheme.buckets, scheme.tokenizer, opts.features, opts.point, params);
  const { W, bc, R, br } = params;
  for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    shuffleInPlace(order, rng);
    let xent = 0, logMae = 0, done = 0;
    for (const i of order) {
      const x = xs[i]!, y = ys[i]!;
      const r = model.forward(x, p) - ts[i]!;
      xent -= Math.log(Math.max(p[y]!, 1e-12));
      logMae += Math.abs(r);
      // Huber(δ) on log length: gradient r/δ clipped to ±1 (≈ L1, i.e. median regression, for small δ)
      const gr = Math.max(-1, Math.min(1, r / delta));
      step(br, G.br!, 0, gr);
      if (H === 0) {
        for (let c = 0; c < k; c++) {
          // cross-entropy gradient wrt the logits is p − onehot(y)
          const g = p[c]! - (c === y ? 1 : 0);
          step(bc, G.bc!, c, g);
          for (let j = 0; j < x.idx.length; j++) step(W, G.W!, x.idx[j]! * k + c, g * x.val[j]!);
        }
        if (gr !== 0) for (let j = 0; j < x.idx.length; j++) step(R, G.R!, x.idx[j]!, gr * x.val[j]!);
      } else {
        const h = model.h, a = model.a, E = params.E!, b1 = params.b1!;
        gh.fill(0);
        for (let c = 0; c < k; c++) {
          const g = p[c]! - (c === y ? 1 : 0);
          step(bc, G.bc!, c, g);
          for (let u = 0; u < H; u++) {
            gh[u] += g * W[u * k + c]!;
            if (h[u]! > 0) step(W, G.W!, u * k + c, g * h[u]!);
          }
        }
        for (let u = 0; u < H; u++) {
          gh[u] += gr * R[u]!;
          if (h[u]! > 0) step(R, G.R!, u, gr * h[u]!);
          if (a[u]! <= 0) gh[u] = 0; // ReLU
          else step(b1, G.b1!, u, gh[u]!);
        }
        for (let j = 0; j < x.idx.length; j++) {
          const base = x.idx[j]! * H, v = x.val[j]!;
          for (let u = 0; u < H; u++) if (gh[u] !== 0) step(E, G.E!, base + u, gh[u]! * v);
        }
      }
      if (++done % 2048 === 0) hooks.onStep?.((epoch - 1) * train.length + done);
    }
    hooks.onStep?.(epoch * train.length);
    hooks.onEpoch?.({ epoch, xent: xent / train.length, logMae: logMae / train.length });
  }
  return model;
}

function medianOf(v: number[]): number {
  const s = Float64Array.from(v).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
