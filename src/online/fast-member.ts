/**
 * Online learning of the fast member: the n-gram model's regression readout, per target.
 *
 * The n-gram member (src/baselines/ngram) maps a prompt's hashed features through an embedding bag + ReLU to a
 * hidden vector h (64 wide in the shipped models) and reads log(1 + tokens) off it with R·h + br. Per target
 * LLM we keep our own copy of (R, br), start it at the base's and take one AdaGrad step of a Huber loss on
 * log length per observation. The embedding is shared and frozen (it is 8 MB; the readout is 65 floats per
 * target, so per-target memory stays tiny and bounded). A step trains a private copy and then swaps the
 * reference the predictor reads (copy-on-publish), so a prediction sees either the old or the new head,
 * never a half-updated one. A step is ~100 multiply-adds, far cheaper than a worker-thread round trip, so it
 * runs inline on the learning chain (which never blocks predictions).
 */
import type { NgramPredictor } from "../baselines/ngram/model.js";
import { EnsemblePredictor } from "../predictor/ensemble.js";
import { LengthPredictor } from "../predictor/length-predictor.js";
import type { Predictor } from "../model/prediction.js";

export interface FastOptions {
  /** AdaGrad learning rate of the readout. */
  lr: number;
  /** Weight of the adapted n-gram in the log-space average (default: its weight in the base ensemble). */
  weight?: number;
  /** Huber δ on log length. */
  delta: number;
}

export const DEFAULT_FAST: FastOptions = { lr: 1, delta: 0.3 };

/** The base n-gram readout a target's head starts from (plain data: it crosses a worker boundary). */
export interface FastReadout {
  hidden: number;
  R: ArrayLike<number>;
  br: number;
}

/**
 * The n-gram member of a base predictor and its weight in the ensemble's log-space average. `ngram` is there
 * when the member is in this thread (features computed here); a base served from a worker thread gives only
 * the readout and sends each prompt's features with its prediction (`Prediction.features`).
 */
export interface FastMember {
  ngram?: NgramPredictor;
  readout: FastReadout;
  weight: number;
}

export function findFastMember(base: Predictor): FastMember | undefined {
  const m = findMember(base, (p) => p.name === "ngram" && (p as NgramPredictor).params?.hidden > 0);
  if (!m) return undefined;
  const ngram = m.predictor as NgramPredictor;
  return { ngram, readout: { hidden: ngram.params.hidden, R: ngram.params.R, br: ngram.params.br[0]! }, weight: m.weight };
}

/**
 * The member of a base predictor that matches `test`, with its normalised weight in the ensemble's log-space
 * average (1 when the base is that predictor itself). Looks through wrappers (LengthPredictor, caches) that
 * expose the predictor they wrap as `inner`.
 */
export function findMember(base: Predictor, test: (p: Predictor) => boolean): { predictor: Predictor; weight: number } | undefined {
  let inner: Predictor = base;
  for (let d = 0; d < 4 && (inner instanceof LengthPredictor || isPredictor((inner as { inner?: unknown }).inner)); d++) inner = (inner as { inner: Predictor }).inner;
  if (test(inner)) return { predictor: inner, weight: 1 };
  if (inner instanceof EnsemblePredictor) {
    const total = inner.members.reduce((s, m) => s + m.weight, 0);
    const m = inner.members.find((x) => test(x.predictor));
    if (m) return { predictor: m.predictor, weight: m.weight / total };
  }
  return undefined;
}

function isPredictor(v: unknown): v is Predictor {
  return typeof v === "object" && v !== null && typeof (v as Predictor).predictBatch === "function" && typeof (v as Predictor).name === "string";
}

/** The hidden vector and the base readout of a prompt (shared by every target). */
export interface FastFeatures {
  h: Float32Array;
  /** log1p of the base n-gram's expectedTokens. */
  base: number;
}

export function fastFeatures(m: { ngram: NgramPredictor }, prompt: string): FastFeatures {
  const p = new Float64Array(m.ngram.k);
  const reg = m.ngram.forward(m.ngram.featurize(prompt), p);
  return { h: Float32Array.from(m.ngram.h), base: Math.log1p(Math.max(0, Math.expm1(reg))) };
}

export interface FastHeadState { R: number[]; br: number; G: number[]; steps: number }

/** One target's readout; `R`/`br` are replaced, never mutated, once published. */
export class FastHead {
  private constructor(private R: Float32Array, private br: number, private G: Float64Array, public steps: number, private readonly o: FastOptions) {}

  static from(m: FastMember, o: FastOptions = DEFAULT_FAST): FastHead {
    const H = m.readout.hidden;
    return new FastHead(Float32Array.from(m.readout.R), m.readout.br, new Float64Array(H + 1), 0, o);
  }

  /** log1p(tokens) this target's n-gram predicts. */
  predict(h: Float32Array): number {
    const R = this.R;
    let reg = this.br;
    for (let u = 0; u < h.length; u++) reg += R[u]! * h[u]!;
    return Math.log1p(Math.max(0, Math.expm1(reg)));
  }

  /** One AdaGrad step toward log1p(tokens) = y, then publish the new weights. */
  step(h: Float32Array, y: number): void {
    const R = Float32Array.from(this.R);
    let reg = this.br;
    for (let u = 0; u < h.length; u++) reg += R[u]! * h[u]!;
    const g = Math.max(-1, Math.min(1, (reg - y) / this.o.delta));
    const G = this.G, H = R.length, lr = this.o.lr;
    G[H]! += g * g;
    const br = this.br - (lr * g) / Math.sqrt(G[H]! + 1e-8);
    for (let u = 0; u < H; u++) {
      if (h[u]! <= 0) continue;
      const gu = g * h[u]!;
      G[u]! += gu * gu;
      R[u] = R[u]! - (lr * gu) / Math.sqrt(G[u]! + 1e-8);
    }
    // Publish: one reference swap each.
    this.R = R;
    this.br = br;
    this.steps++;
  }

  toJSON(): FastHeadState {
    return { R: Array.from(this.R), br: this.br, G: Array.from(this.G), steps: this.steps };
  }

  static restore(s: FastHeadState, m: FastMember, o: FastOptions = DEFAULT_FAST): FastHead | undefined {
    const H = m.readout.hidden;
    if (!Array.isArray(s?.R) || s.R.length !== H || !Array.isArray(s.G) || s.G.length !== H + 1 || typeof s.br !== "number") return undefined;
    return new FastHead(Float32Array.from(s.R), s.br, Float64Array.from(s.G), s.steps ?? 0, o);
  }
}
