/**
 * Reverse-mode autodiff over the engine's graphs: `grad(loss, params)` walks the nodes between the params and
 * the loss backwards and appends, for each, the nodes of its vector-Jacobian product (one rule per op type in
 * `VJP` below). Broadcasting is undone with `sumTo`; the result is more ONNX nodes in the same graph.
 */
import { LenpredError } from "../util/errors.js";
import type { Tensor } from "./graph.js";
import { attr, type Node } from "./graph.js";
import * as op from "./ops.js";
import { fmt, sameDim } from "./shape.js";

type Grads = readonly (Tensor | undefined)[];
/** A VJP rule: given the node and the gradients of its outputs, the gradients of its inputs. */
type Rule = (n: Node, gy: Grads, opts: GradOptions) => Grads;

const SQRT_HALF = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/** Sum `g` (shaped like a broadcast result) down to the shape of `x`. */
export function sumTo(g: Tensor, x: Tensor): Tensor {
  const lead = g.rank - x.rank;
  if (lead < 0) throw new LenpredError(`sumTo: gradient ${fmt(g.shape)} has lower rank than ${x.name} ${fmt(x.shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead) axes.push(i);
    else {
      const dx = x.shape[i - lead]!;
      const dg = g.shape[i]!;
      if (dx === 1 && dg !== 1) axes.push(i);
      else if (!sameDim(dx, dg) && typeof dx === "string" && typeof dg === "string") {
        throw new LenpredError(`sumTo: cannot tell whether ${x.name} ${fmt(x.shape)} was broadcast to ${fmt(g.shape)}`);
      }
    }
  }
  if (axes.length === 0) return g;
  let r = op.reduceSum(g, axes, true);
  if (lead > 0) r = op.squeeze(r, axes.slice(0, lead));
  return r;
}

function staticNumel(x: Tensor): number | undefined {
  return op.staticSize(x.shape);
}

/** Cast a gradient to float data type of the value it belongs to (ONNX ops need matching dtypes). */
function floatScalarLike(v: number, like: Tensor): Tensor {
  return op.scalar(like.graph, v, like.dtype);
}

function intAttr(n: Node, name: string, dflt: number): number {
  const a = n.attrs[name];
  return a && a.kind === "int" ? a.v : dflt;
}

function intsInput(n: Node, i: number): number[] {
  const t = n.inputs[i];
  const init = t && t.graph.initializers.get(t.name);
  if (!init) throw new LenpredError(`${n.op}: input ${i} must be a constant for differentiation`);
  return Array.from(init.data.data as BigInt64Array, Number);
}

function floatInput(n: Node, i: number): number | undefined {
  const t = n.inputs[i];
  const init = t && t.graph.initializers.get(t.name);
  return init ? Number((init.data.data as Float32Array)[0]) : undefined;
}

/** Undo Reduce*: put the reduced axes back (keepdims = 0) and broadcast to the input's runtime shape. */
function unreduce(gy: Tensor, n: Node): Tensor {
  const x = n.inputs[0]!;
  const axes = intsInput(n, 1);
  const g = intAttr(n, "keepdims", 1) ? gy : op.unsqueeze(gy, axes);
  return op.expand(g, op.shapeOf(x), x.shape);
}

/** Gradient of MatMul w.r.t. the right operand `b` (shape [.., K, N]) given left `a` and dY. */
function matmulGradB(a: Tensor, b: Tensor, gy: Tensor): Tensor {
  const k = a.shape[a.rank - 1]!;
  const m = gy.shape[gy.rank - 1]!;
  if (b.rank === 2 && a.rank > 2 && typeof k === "number" && typeof m === "number") {
    // Flatten the batch dims: dB = A2ᵀ·dY2 in one Gemm instead of a batched product and a reduction.
    return op.gemm(op.reshape(a, [-1, k]), op.reshape(gy, [-1, m]), undefined, { transA: true });
  }
  return sumTo(op.matmul(op.transposeLast2(a), gy), b);
}

export const VJP: Record<string, Rule> = {
  Identity: (_n, [gy]) => [gy],
  Add: (n, [gy]) => [sumTo(gy!, n.inputs[0]!), sumTo(gy!, n.inputs[1]!)],
  Sub: (n, [gy]) => [sumTo(gy!, n.inputs[0]!), sumTo(op.neg(gy!), n.inputs[1]!)],
  Mul: (n, [gy]) => {
    const [a, b] = n.inputs as Tensor[];
    return [sumTo(op.mul(gy!, b!), a!), sumTo(op.mul(gy!, a!), b!)];
  },
  Div: (n, [gy]) => {
    const [a, b] = n.inputs as Tensor[];
    const y = n.outputs[0]!;
    const ga = op.div(gy!, b!);
    return [sumTo(ga, a!), sumTo(op.neg(op.mul(ga, y)), b!)];
  },
  Pow: (n, [gy]) => {
    // d/da a^b = b·a^(b−1); the exponent is treated as a constant.
    const [a, b] = n.inputs as Tensor[];
    return [sumTo(op.mul(gy!, op.mul(b!, op.pow(a!, op.sub(b!, 1)))), a!), undefined];
  },
  Max: (n, [gy]) => minMax(n, gy!, true),
  Min: (n, [gy]) => minMax(n, gy!, false),
  Neg: (_n, [gy]) => [op.neg(gy!)],
  Exp: (n, [gy]) => [op.mul(gy!, n.outputs[0]!)],
  Log: (n, [gy]) => [op.div(gy!, n.inputs[0]!)],
  Sqrt: (n, [gy]) => [op.div(op.mul(gy!, 0.5), n.outputs[0]!)],
  Abs: (n, [gy]) => [op.mul(gy!, op.sign(n.inputs[0]!))],
  Tanh: (n, [gy]) => {
    const y = n.outputs[0]!;
    return [op.mul(gy!, op.sub(1, op.mul(y, y)))];
  },
  Sigmoid: (n, [gy]) => {
    const y = n.outputs[0]!;
    return [op.mul(gy!, op.mul(y, op.sub(1, y)))];
  },
  Erf: (n, [gy]) => {
    const x = n.inputs[0]!;
    return [op.mul(gy!, op.mul(op.exp(op.neg(op.mul(x, x))), TWO_OVER_SQRT_PI))];
  },
  Relu: (n, [gy]) => [op.where(op.greater(n.inputs[0]!, 0), gy!, 0)],
  Gelu: (n, [gy]) => {
    const x = n.inputs[0]!;
    const a = n.attrs.approximate;
    if (a && a.kind === "string" && a.v !== "none") throw new LenpredError("Gelu backward: only approximate='none' is supported");
    // d/dx x·Φ(x) = Φ(x) + x·φ(x)
    const cdf = op.mul(op.add(op.erf(op.mul(x, SQRT_HALF)), 1), 0.5);
    const pdf = op.mul(op.exp(op.mul(op.mul(x, x), -0.5)), INV_SQRT_2PI);
    return [op.mul(gy!, op.add(cdf, op.mul(x, pdf)))];
  },
  Cast: (n, [gy]) => {
    const x = n.inputs[0]!;
    return [op.isFloat(x.dtype) ? op.cast(gy!, x.dtype) : undefined];
  },
  Where: (n, [gy]) => {
    const [c, a, b] = n.inputs as Tensor[];
    return [undefined, sumTo(op.where(c!, gy!, 0), a!), sumTo(op.where(c!, 0, gy!), b!)];
  },
  MatMul: (n, [gy]) => {
    const [a, b] = n.inputs as Tensor[];
    return [sumTo(op.matmul(gy!, op.transposeLast2(b!)), a!), matmulGradB(a!, b!, gy!)];
  },
  Gemm: (n, [gy]) => {
    const [a, b, c] = n.inputs;
    const tA = intAttr(n, "transA", 0) === 1;
    const tB = intAttr(n, "transB", 0) === 1;
    const alphaA = n.attrs.alpha;
    const betaA = n.attrs.beta;
    const alpha = alphaA && alphaA.kind === "float" ? alphaA.v : 1;
    const beta = betaA && betaA.kind === "float" ? betaA.v : 1;
    const ga = tA ? op.gemm(b!, gy!, undefined, { transA: tB, transB: true, alpha }) : op.gemm(gy!, b!, undefined, { transB: !tB, alpha });
    const gb = tB ? op.gemm(gy!, a!, undefined, { transA: true, transB: tA, alpha }) : op.gemm(a!, gy!, undefined, { transA: !tA, alpha });
    const gc = c ? sumTo(beta === 1 ? gy! : op.mul(gy!, beta), c) : undefined;
    return [ga, gb, gc];
  },
  Transpose: (n, [gy]) => {
    const p = n.attrs.perm;
    const perm = p && p.kind === "ints" ? p.v : n.inputs[0]!.shape.map((_, i, s) => s.length - 1 - i);
    const inv = new Array<number>(perm.length);
    perm.forEach((v, i) => (inv[v] = i));
    return [op.transpose(gy!, inv)];
  },
  Reshape: (n, [gy]) => {
    const x = n.inputs[0]!;
    return [op.reshapeLike(gy!, op.shapeOf(x), x.shape), undefined];
  },
  Squeeze: (n, [gy]) => [op.unsqueeze(gy!, intsInput(n, 1)), undefined],
  Unsqueeze: (n, [gy]) => [op.squeeze(gy!, intsInput(n, 1)), undefined],
  Expand: (n, [gy]) => [sumTo(gy!, n.inputs[0]!), undefined],
  ReduceSum: (n, [gy]) => [unreduce(gy!, n), undefined],
  ReduceMean: (n, [gy]) => {
    const x = n.inputs[0]!;
    const y = n.outputs[0]!;
    const nx = staticNumel(x);
    const ny = staticNumel(y);
    // The count of reduced elements: static when the shapes are, else Size(x)/Size(y) at run time.
    const count = nx !== undefined && ny !== undefined ? floatScalarLike(nx / ny, x) : op.cast(op.div(op.sizeOf(x), op.sizeOf(y)), x.dtype);
    return [op.div(unreduce(gy!, n), count), undefined];
  },
  Softmax: (n, [gy]) => {
    const y = n.outputs[0]!;
    const axis = intAttr(n, "axis", -1);
    const dot = op.reduceSum(op.mul(gy!, y), [axis], true);
    return [op.mul(y, op.sub(gy!, dot))];
  },
  LayerNormalization: (n, gys) => {
    const gy = gys[0]!;
    if (gys[1] || gys[2]) throw new LenpredError("LayerNormalization backward: gradients through mean/inv-std outputs are not supported");
    const [x, scale, bias] = n.inputs as Tensor[];
    const [, mean, invStd] = n.outputs as Tensor[];
    const axis = intAttr(n, "axis", -1);
    const a = axis < 0 ? axis + x!.rank : axis;
    const normAxes = x!.shape.map((_, i) => i).filter((i) => i >= a);
    const xhat = op.mul(op.sub(x!, op.cast(mean!, x!.dtype)), op.cast(invStd!, x!.dtype));
    const gScale = sumTo(op.mul(gy, xhat), scale!);
    const gBias = bias ? sumTo(gy, bias) : undefined;
    // dx = invStd · (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)), ĝ = dy·scale
    const gh = op.mul(gy, scale!);
    const m1 = op.reduceMean(gh, normAxes, true);
    const m2 = op.reduceMean(op.mul(gh, xhat), normAxes, true);
    const gx = op.mul(op.cast(invStd!, x!.dtype), op.sub(op.sub(gh, m1), op.mul(xhat, m2)));
    return [gx, gScale, gBias];
  },
  Dropout: (n, [gy]) => {
    const x = n.inputs[0]!;
    const mask = n.outputs[1]!;
    const ratio = floatInput(n, 1);
    const scale = ratio !== undefined ? floatScalarLike(1 / (1 - ratio), x) : op.div(1, op.sub(1, n.inputs[1]!));
    // Two passes (scale, select) rather than Cast + Mul + Mul.
    return [op.where(mask, op.mul(gy!, scale), 0), undefined, undefined];
  },
  Gather: (n, [gy], o) => [o.embeddingGrad === "scatterND" && intAttr(n, "axis", 0) === 0 ? gatherGradScatterND(n, gy!) : gatherGrad(n, gy!), undefined],
  Slice: (n, [gy]) => [sliceGrad(n, gy!), undefined, undefined, undefined, undefined],
  Concat: (n, [gy]) => concatGrad(n, gy!),
  SoftmaxCrossEntropyLoss: (n, gys) => {
    if (gys[1]) throw new LenpredError("SoftmaxCrossEntropyLoss backward: gradient through log_prob is not supported");
    return [crossEntropyGrad(n, gys[0]!), undefined, undefined];
  },
};

function minMax(n: Node, gy: Tensor, isMax: boolean): Grads {
  const [a, b] = n.inputs as Tensor[];
  // Ties send the gradient to the first operand (like torch.maximum's subgradient choice of one side).
  const pickA = isMax ? op.greaterOrEqual(a!, b!) : op.not(op.greater(a!, b!));
  return [sumTo(op.where(pickA, gy, 0), a!), sumTo(op.where(pickA, 0, gy), b!)];
}

/**
 * Embedding-style gradient: scatter-add dY rows into zeros shaped like the table. As ScatterElements on
 * [rows, rest] (indices broadcast along the row), not ScatterND: onnxruntime's ScatterND add splits the rows
 * across threads and races on repeated ids (lost updates, different weights every run with 2 threads).
 */
function gatherGrad(n: Node, gy: Tensor): Tensor {
  const [data, idx] = n.inputs as Tensor[];
  const axis = intAttr(n, "axis", 0);
  const r = data!.rank;
  const q = idx!.rank;
  // Move the gathered axis to the front (a no-op for axis 0), scatter there, move it back.
  const front = [axis, ...Array.from({ length: r }, (_, i) => i).filter((i) => i !== axis)];
  const dataT = axis === 0 ? data! : op.transpose(data!, front);
  const gyPerm = [
    ...Array.from({ length: q }, (_, i) => axis + i),
    ...Array.from({ length: axis }, (_, i) => i),
    ...Array.from({ length: gy.rank - axis - q }, (_, i) => axis + q + i),
  ];
  const gyT = axis === 0 ? gy : op.transpose(gy, gyPerm);
  // [rows, rest] table, [n, rest] updates, [n, rest] indices (each id repeated along its row).
  const g = data!.graph;
  const prod = (ds: readonly (number | string)[]) => ds.every((d) => typeof d === "number") ? (ds as number[]).reduce((a, b) => a * b, 1) : undefined;
  const rest = prod(dataT.shape.slice(1)) ?? "rest";
  const flatten = (x: Tensor, at: number, shape: (number | string)[]) => g.node("Flatten", [x], [{ dtype: x.dtype, shape }], { axis: attr.i(at) })[0]!;
  // int32 indices: the [n, rest] index tensor is half the size of int64 (50 MB → 25 MB at 16×512 tokens, dim 768).
  const ids = op.reshape(idx!.dtype === "int32" ? idx! : op.cast(idx!, "int32"), [-1, 1]);
  const upd = flatten(gyT, q, [ids.shape[0]!, rest]);
  const table = flatten(op.zerosLike(dataT), 1, [dataT.shape[0]!, rest]);
  const summed = op.scatterElementsAdd(table, op.expand(ids, op.shapeOf(upd), upd.shape), upd, 0);
  const scattered = op.reshapeLike(summed, op.shapeOf(dataT), dataT.shape);
  if (axis === 0) return scattered;
  const inv = new Array<number>(r);
  front.forEach((v, i) => (inv[v] = i));
  return op.transpose(scattered, inv);
}

/** The ScatterND form of `gatherGrad` on axis 0 (before 2026-11-30): races with > 1 thread; benchmarks only. */
function gatherGradScatterND(n: Node, gy: Tensor): Tensor {
  const [data, idx] = n.inputs as Tensor[];
  return op.scatterNDAdd(op.zerosLike(data!), op.unsqueeze(idx!.dtype === "int64" ? idx! : op.cast(idx!, "int64"), [-1]), gy);
}

/** Pad dY back to the input's size with zeros; pads computed from the runtime shape (dims may be dynamic). */
function sliceGrad(n: Node, gy: Tensor): Tensor {
  const x = n.inputs[0]!;
  const starts = intsInput(n, 1);
  const ends = intsInput(n, 2);
  const axes = n.inputs[3] ? intsInput(n, 3) : starts.map((_, i) => i);
  if (n.inputs[4] && intsInput(n, 4).some((s) => s !== 1)) throw new LenpredError("Slice backward: only step 1 is supported");
  const g = x.graph;
  const shape = op.shapeOf(x);
  const zero = op.ints(g, [0]);
  const before: Tensor[] = [];
  const after: Tensor[] = [];
  for (let d = 0; d < x.rank; d++) {
    const k = axes.findIndex((a) => (a < 0 ? a + x.rank : a) === d);
    if (k < 0) {
      before.push(zero);
      after.push(zero);
      continue;
    }
    const dim = op.slice(shape, [d], [d + 1]);
    const clampIdx = (v: number): Tensor => (v < 0 ? op.max(op.add(dim, op.ints(g, [v])), zero) : op.min(op.ints(g, [v]), dim));
    const s = clampIdx(starts[k]!);
    const e = op.max(clampIdx(ends[k]!), s);
    before.push(s);
    after.push(op.sub(dim, e));
  }
  const pads = op.concat([...before, ...after], 0);
  return g.node("Pad", [gy, pads], [{ dtype: gy.dtype, shape: x.shape }], { mode: attr.s("constant") })[0]!;
}

function concatGrad(n: Node, gy: Tensor): Grads {
  const xs = n.inputs as Tensor[];
  const axis = intAttr(n, "axis", 0);
  const dims = xs.map((x) => x.shape[axis]!);
  const g = gy.graph;
  const sizes = dims.every((d) => typeof d === "number")
    ? op.ints(g, dims as number[])
    : op.concat(xs.map((x) => op.slice(op.shapeOf(x), [axis], [axis + 1])), 0);
  return g.node("Split", [gy, sizes], xs.map((x) => ({ dtype: gy.dtype, shape: x.shape })), { axis: attr.i(axis) });
}

/** d loss / d logits = (softmax − onehot) · valid / count (mean) · dLoss. */
function crossEntropyGrad(n: Node, gy: Tensor): Tensor {
  const [logits, labels] = n.inputs as Tensor[];
  const logProb = n.outputs[1]!;
  const g = logits!.graph;
  const red = n.attrs.reduction;
  const reduction = red && red.kind === "string" ? red.v : "mean";
  const ignore = n.attrs.ignore_index;
  const lab = labels!.dtype === "int64" ? labels! : op.cast(labels!, "int64");
  let safe = lab;
  let valid: Tensor | undefined;
  if (ignore && ignore.kind === "int") {
    const isValid = op.not(op.equal(lab, op.scalar(g, ignore.v, "int64")));
    valid = op.cast(isValid, logits!.dtype);
    safe = op.where(isValid, lab, op.scalar(g, 0, "int64"));
  }
  const c = logits!.shape[1]!;
  const depth = op.squeeze(op.slice(op.shapeOf(logits!), [1], [2]), [0]);
  // One-hot as (label == 0..C-1): ORT's OneHot has no float64 kernel.
  const classes = typeof c === "number" ? op.constant(g, Array.from({ length: c }, (_, i) => i), [c], "int64") : g.node("Range", [op.scalar(g, 0, "int64"), depth, op.scalar(g, 1, "int64")], [{ dtype: "int64", shape: [c] }])[0]!;
  const onehot = op.cast(op.equal(op.unsqueeze(safe, [1]), classes), logits!.dtype);
  let d = op.sub(op.exp(logProb), onehot);
  if (valid) d = op.mul(d, op.unsqueeze(valid, [1]));
  if (reduction === "none") return op.mul(d, op.unsqueeze(gy, [1]));
  let scale = gy;
  if (reduction === "mean") {
    const count = valid ? op.reduceSum(valid) : op.cast(op.slice(op.shapeOf(logits!), [0], [1]), logits!.dtype);
    scale = op.div(gy, valid ? count : op.squeeze(count, [0]));
  }
  return op.mul(d, scale);
}

export interface GradOptions {
  /** Gradient of the output to start from (default: ones shaped like `loss`). */
  seed?: Tensor;
  /**
   * Gather (embedding) gradient: "scatterElements" (default, deterministic) or "scatterND" (the form before
   * 2026-11-30; onnxruntime's ScatterND add races on repeated ids with > 1 intra-op thread: benchmarking only).
   */
  embeddingGrad?: "scatterElements" | "scatterND";
}

/**
 * Append the gradient graph of `loss` w.r.t. `params` and return one gradient tensor per param (zeros for a
 * param the loss does not depend on).
 */
export function grad(loss: Tensor, params: readonly Tensor[], opts: GradOptions = {}): Tensor[] {
  const g = loss.graph;
  if (!op.isFloat(loss.dtype)) throw new LenpredError(`grad: loss ${loss.name} must be floating point, got ${loss.dtype}`);
  // Nodes on a path params -> loss: ancestors of loss ∩ descendants of params.
  const ancestors = new Set<number>();
  const stack: Tensor[] = [loss];
  const seen = new Set<string>();
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t.name) || !t.producer) continue;
    seen.add(t.name);
    ancestors.add(t.producer.id);
    for (const i of t.producer.inputs) if (i) stack.push(i);
  }
  const wanted = new Set<string>(params.map((p) => p.name));
  const live = new Set<string>(wanted);
  const onPath: Node[] = [];
  for (const n of g.nodes) {
    if (!ancestors.has(n.id)) continue;
    if (n.inputs.some((i) => i && live.has(i.name))) {
      onPath.push(n);
      for (const o of n.outputs) live.add(o.name);
    }
  }

  const grads = new Map<string, Tensor>();
  const accumulate = (t: Tensor, d: Tensor): void => {
    const prev = grads.get(t.name);
    grads.set(t.name, prev ? op.add(prev, d) : d);
  };
  grads.set(loss.name, opts.seed ?? (loss.rank === 0 ? op.scalar(g, 1, loss.dtype) : op.constantOfShape(op.shapeOf(loss), loss.shape, 1, loss.dtype)));

  for (let k = onPath.length - 1; k >= 0; k--) {
    const n = onPath[k]!;
    const gy = n.outputs.map((o) => grads.get(o.name));
    if (gy.every((x) => x === undefined)) continue;
    const rule = VJP[n.op];
    if (!rule) throw new LenpredError(`grad: no VJP rule for op ${n.op} (node ${n.op}_${n.id})`);
    const gx = rule(n, gy, opts);
    n.inputs.forEach((x, i) => {
      const d = gx[i];
      if (x && d && live.has(x.name) && op.isFloat(x.dtype)) accumulate(x, d);
    });
    for (const o of n.outputs) if (!wanted.has(o.name)) grads.delete(o.name); // free what is no longer needed
  }
  return params.map((p) => grads.get(p.name) ?? op.zerosLike(p));
}
