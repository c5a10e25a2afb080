/**
 * Counter-based dropout: the mask is a pure function of (seed, site, element index), hashed in-graph with
 * uint32 integer ops, so it does not depend on any generator state inside onnxruntime. Feeding a new seed
 * each step (e.g. `stepSeed(runSeed, step)`) gives fresh masks per step, and a resumed run that feeds the
 * same seeds draws exactly the masks the uninterrupted run would have drawn.
 *
 * The hash (all arithmetic mod 2³²; `lowbias32` is Chris Wellons' integer mixer):
 *   site keys   k1 = lowbias32(seed ^ site·0x9E3779B9),  k2 = lowbias32(k1 ^ 0x85EBCA6B)
 *   element i   h  = (i + k1)·0x7FEB352D;  h ^= h >>> 15;  h = (h ^ k2)·0x846CA68B
 *   dropped iff h < round(ratio · 2³²)
 * The comparison reads the top bits of the last product, which depend on every bit of i and both keys.
 * i + k1 comes straight out of one Range (int64, then truncated to uint32), which saves two full passes over
 * i ^ k1; two sites whose index streams overlap still differ after the xor with their own k2.
 * `dropoutMaskHost` is the same function in plain JS (reference for tests).
 */
import { LenpredError } from "../util/errors.js";
import { attr, type Tensor } from "./graph.js";
import * as op from "./ops.js";

const GOLDEN = 0x9e3779b9;
const K2_SALT = 0x85ebca6b;
const M1 = 0x7feb352d;
const M2 = 0x846ca68b;
const TWO32 = 2 ** 32;

/** Wellons' lowbias32 integer hash (a bijection on uint32). */
export function lowbias32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, M1) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, M2) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

const f64 = new Float64Array(1);
const f64Words = new Uint32Array(f64.buffer);

/** The per-step dropout seed (uint32) for a run seed (any finite number) and a 0-based optimizer step. */
export function stepSeed(runSeed: number, step: number): number {
  if (!Number.isFinite(runSeed) || !Number.isSafeInteger(step) || step < 0) throw new LenpredError(`stepSeed: want a finite seed and an integer step >= 0, got ${runSeed}, ${step}`);
  // Fold in all 64 bits of the seed's double and both halves of the step, so nearby seeds and steps give
  // unrelated keys.
  f64[0] = runSeed;
  let h = lowbias32((f64Words[0]! ^ 0x6a09e667) >>> 0);
  h = lowbias32((h ^ f64Words[1]!) >>> 0);
  h = lowbias32((h ^ step) >>> 0);
  return lowbias32((h ^ Math.floor(step / TWO32)) >>> 0);
}

/** The drop threshold on the hash for a ratio; the keep probability is exactly 1 − threshold/2³². */
export function dropThreshold(ratio: number): number {
  return Math.min(TWO32 - 1, Math.round(ratio * TWO32));
}

function siteKeys(seed: number, site: number): [number, number] {
  const k1 = lowbias32((seed ^ Math.imul(site, GOLDEN)) >>> 0);
  return [k1, lowbias32((k1 ^ K2_SALT) >>> 0)];
}

/** Host reference: the keep mask (1 = kept) of `n` elements at `site` for a uint32 `seed`. */
export function dropoutMaskHost(seed: number, site: number, n: number, ratio: number): Uint8Array {
  const [k1, k2] = siteKeys(seed >>> 0, site);
  const thr = dropThreshold(ratio);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let h = Math.imul((i + k1) >>> 0, M1) >>> 0;
    h = (h ^ (h >>> 15)) >>> 0;
    h = Math.imul((h ^ k2) >>> 0, M2) >>> 0;
    out[i] = h < thr ? 0 : 1;
  }
  return out;
}

// ---------------------------------------------------------------- graph side (uint32 ops)

const u32 = (t: Tensor, v: number): Tensor => op.scalar(t.graph, v >>> 0, "uint32");
const bin = (o: string, a: Tensor, b: Tensor): Tensor => a.graph.node(o, [a, b], [{ dtype: "uint32", shape: a.shape }])[0]!;
const xor = (a: Tensor, b: Tensor): Tensor => bin("BitwiseXor", a, b);
const mulU = (a: Tensor, m: number): Tensor => bin("Mul", a, u32(a, m));
const shr = (a: Tensor, k: number): Tensor => a.graph.node("BitShift", [a, u32(a, k)], [{ dtype: "uint32", shape: a.shape }], { direction: attr.s("RIGHT") })[0]!;
const xorShr = (a: Tensor, k: number): Tensor => xor(a, shr(a, k));

function lowbias32T(x: Tensor): Tensor {
  return xorShr(mulU(xorShr(mulU(xorShr(x, 16), M1), 15), M2), 16);
}

/**
 * Dropout whose keep mask is hashed from `seed` (an int64 scalar tensor, e.g. a graph input fed
 * `stepSeed(runSeed, step)` each step; only its low 32 bits are used), the static `site` number (distinct per
 * dropout in a graph) and the element's row-major index. Output x·mask/(1 − ratio); built from a plain Mul
 * with a non-differentiable float mask, so the backward is dy·mask/(1 − ratio) by the Mul rule.
 */
export function keyedDropout(x: Tensor, ratio: number, seed: Tensor, site: number): Tensor {
  if (ratio === 0) return x;
  if (!(ratio > 0 && ratio < 1)) throw new LenpredError(`dropout: ratio must be in [0, 1), got ${ratio}`);
  if (!Number.isInteger(site) || site < 0) throw new LenpredError(`dropout: site must be an integer >= 0, got ${site}`);
  if (seed.rank !== 0 || (seed.dtype !== "int64" && seed.dtype !== "int32")) throw new LenpredError(`dropout: seed ${seed.name} must be an int64/int32 scalar`);
  const g = x.graph;
  const s = op.cast(seed, "uint32");
  const k1 = lowbias32T(xor(s, u32(s, Math.imul(site, GOLDEN))));
  const k2 = lowbias32T(xor(k1, u32(k1, K2_SALT)));
  // i + k1 for i in 0..n-1, as one int64 Range (no uint32 Range kernel) truncated to uint32 (mod 2³²).
  const start = op.cast(k1, "int64");
  const idx = g.node("Range", [start, op.add(start, op.sizeOf(x)), op.scalar(g, 1, "int64")], [{ dtype: "int64", shape: [op.staticSize(x.shape) ?? "dropout_n"] }])[0]!;
  let h = mulU(op.cast(idx, "uint32"), M1);
  h = xorShr(h, 15);
  h = mulU(xor(h, k2), M2);
  const dropped = g.node("Less", [h, u32(h, dropThreshold(ratio))], [{ dtype: "bool", shape: h.shape }])[0]!;
  const mask = op.where(dropped, op.scalar(g, 0, x.dtype), op.scalar(g, 1 / (1 - ratio), x.dtype));
  return op.mul(x, op.reshapeLike(mask, op.shapeOf(x), x.shape));
}
