/**
 * Op functions: each appends one ONNX node (or a few) to the tensors' graph and infers the output shape.
 * Numbers are accepted wherever a tensor operand is, and become scalar constants of the other operand's dtype.
 * Reverse-mode rules for these nodes live in autodiff.ts.
 */
import { LenpredError } from "../util/errors.js";
import { attr, type Attr, type ConstData, type DType, type Dim, type Graph, type Shape, Tensor } from "./graph.js";
import { broadcastShapes, dimProduct, fmt, normAxis, reshapeShape, sliceDim } from "./shape.js";

export type Operand = Tensor | number;

const FLOAT_TYPES: readonly DType[] = ["float32", "float64", "float16"];
export const isFloat = (d: DType): boolean => FLOAT_TYPES.includes(d);

// ---------------------------------------------------------------- constants

function typed(dtype: DType, values: readonly number[]): ConstData["data"] {
  switch (dtype) {
    case "float32": return Float32Array.from(values);
    case "float64": return Float64Array.from(values);
    case "int64": return BigInt64Array.from(values.map((v) => BigInt(v)));
    case "int32": return Int32Array.from(values);
    case "uint32": return Uint32Array.from(values);
    case "bool": case "uint8": return Uint8Array.from(values);
    case "int8": return Int8Array.from(values);
    default: throw new LenpredError(`no constant support for dtype ${dtype}`);
  }
}

/** A scalar constant (rank 0). */
export function scalar(g: Graph, v: number, dtype: DType = "float32"): Tensor {
  return g.constant({ dtype, shape: [], data: typed(dtype, [v]) });
}

/** A 1-D int64 constant (axes, shapes, perms). */
export function ints(g: Graph, vs: readonly number[]): Tensor {
  return g.constant({ dtype: "int64", shape: [vs.length], data: typed("int64", vs) });
}

/** A constant tensor from host values. */
export function constant(g: Graph, values: readonly number[] | ConstData["data"], shape: readonly number[], dtype: DType = "float32"): Tensor {
  const data = ArrayBuffer.isView(values) ? values : typed(dtype, values as number[]);
  return g.constant({ dtype, shape, data });
}

function lift(v: Operand, like: Tensor): Tensor {
  return v instanceof Tensor ? v : scalar(like.graph, v, like.dtype);
}

function pair(a: Operand, b: Operand, op: string): [Tensor, Tensor] {
  if (a instanceof Tensor) return [a, lift(b, a)];
  if (b instanceof Tensor) return [lift(a, b), b];
  throw new LenpredError(`${op}: at least one operand must be a tensor`);
}

function one(t: Tensor, op: string, outs: { dtype: DType; shape: Shape }, inputs: (Tensor | undefined)[] = [t], attrs: Record<string, Attr> = {}): Tensor {
  return t.graph.node(op, inputs, [outs], attrs)[0]!;
}

// ---------------------------------------------------------------- elementwise

function binary(op: string, a: Operand, b: Operand, outType?: DType): Tensor {
  const [x, y] = pair(a, b, op);
  if (x.dtype !== y.dtype) throw new LenpredError(`${op}: dtype mismatch ${x.dtype} vs ${y.dtype} (${x.name}, ${y.name})`);
  return one(x, op, { dtype: outType ?? x.dtype, shape: broadcastShapes(x.shape, y.shape, op) }, [x, y]);
}

export const add = (a: Operand, b: Operand): Tensor => binary("Add", a, b);
export const sub = (a: Operand, b: Operand): Tensor => binary("Sub", a, b);
export const mul = (a: Operand, b: Operand): Tensor => binary("Mul", a, b);
export const div = (a: Operand, b: Operand): Tensor => binary("Div", a, b);
export const max = (a: Operand, b: Operand): Tensor => binary("Max", a, b);
export const min = (a: Operand, b: Operand): Tensor => binary("Min", a, b);
export const pow = (a: Operand, b: Operand): Tensor => binary("Pow", a, b);
export const equal = (a: Operand, b: Operand): Tensor => binary("Equal", a, b, "bool");
export const greater = (a: Operand, b: Operand): Tensor => binary("Greater", a, b, "bool");
export const greaterOrEqual = (a: Operand, b: Operand): Tensor => binary("GreaterOrEqual", a, b, "bool");
export const less = (a: Operand, b: Operand): Tensor => binary("Less", a, b, "bool");

function unary(op: string, x: Tensor, attrs: Record<string, Attr> = {}): Tensor {
  return one(x, op, { dtype: x.dtype, shape: x.shape }, [x], attrs);
}

export const neg = (x: Tensor): Tensor => unary("Neg", x);
export const exp = (x: Tensor): Tensor => unary("Exp", x);
export const log = (x: Tensor): Tensor => unary("Log", x);
export const sqrt = (x: Tensor): Tensor => unary("Sqrt", x);
export const abs = (x: Tensor): Tensor => unary("Abs", x);
export const sign = (x: Tensor): Tensor => unary("Sign", x);
export const tanh = (x: Tensor): Tensor => unary("Tanh", x);
export const sigmoid = (x: Tensor): Tensor => unary("Sigmoid", x);
export const erf = (x: Tensor): Tensor => unary("Erf", x);
export const relu = (x: Tensor): Tensor => unary("Relu", x);
export const not = (x: Tensor): Tensor => unary("Not", x);
export const identity = (x: Tensor): Tensor => unary("Identity", x);
/** Exact GELU, x·Φ(x) (the erf form HF DistilBERT uses); `approximate: "tanh"` for the tanh form. */
export const gelu = (x: Tensor, approximate: "none" | "tanh" = "none"): Tensor => unary("Gelu", x, { approximate: attr.s(approximate) });

export function cast(x: Tensor, to: DType): Tensor {
  if (x.dtype === to) return x;
  const code = { float32: 1, uint8: 2, int8: 3, int32: 6, uint32: 12, int64: 7, bool: 9, float16: 10, float64: 11 }[to];
  return one(x, "Cast", { dtype: to, shape: x.shape }, [x], { to: attr.i(code) });
}

/** where(cond, a, b): a where cond is true, else b (broadcasting). */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  if (cond.dtype !== "bool") throw new LenpredError(`where: condition ${cond.name} must be bool, got ${cond.dtype}`);
  const [x, y] = pair(a, b, "where");
  if (x.dtype !== y.dtype) throw new LenpredError(`where: dtype mismatch ${x.dtype} vs ${y.dtype}`);
  const shape = broadcastShapes(cond.shape, broadcastShapes(x.shape, y.shape, "where"), "where");
  return one(x, "Where", { dtype: x.dtype, shape }, [cond, x, y]);
}

// ---------------------------------------------------------------- linear algebra

/** Batched matrix product with numpy broadcasting over leading dims (both operands rank >= 2). */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.rank < 2 || b.rank < 2) throw new LenpredError(`matmul: operands must have rank >= 2, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  if (a.dtype !== b.dtype) throw new LenpredError(`matmul: dtype mismatch ${a.dtype} vs ${b.dtype}`);
  const k1 = a.shape[a.rank - 1]!;
  const k2 = b.shape[b.rank - 2]!;
  broadcastShapes([k1], [k2], `matmul inner dims of ${fmt(a.shape)} @ ${fmt(b.shape)}`);
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), "matmul");
  return one(a, "MatMul", { dtype: a.dtype, shape: [...batch, a.shape[a.rank - 2]!, b.shape[b.rank - 1]!] }, [a, b]);
}

export interface GemmOptions {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
}

/** Y = alpha·op(A)·op(B) + beta·C for 2-D A, B; C broadcasts to [M, N]. */
export function gemm(a: Tensor, b: Tensor, c?: Tensor, o: GemmOptions = {}): Tensor {
  if (a.rank !== 2 || b.rank !== 2) throw new LenpredError(`gemm: operands must be 2-D, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  const m = o.transA ? a.shape[1]! : a.shape[0]!;
  const n = o.transB ? b.shape[0]! : b.shape[1]!;
  const attrs: Record<string, Attr> = {};
  if (o.transA) attrs.transA = attr.i(1);
  if (o.transB) attrs.transB = attr.i(1);
  if (o.alpha !== undefined && o.alpha !== 1) attrs.alpha = attr.f(o.alpha);
  if (o.beta !== undefined && o.beta !== 1) attrs.beta = attr.f(o.beta);
  if (c) broadcastShapes([m, n], c.shape, "gemm bias");
  return one(a, "Gemm", { dtype: a.dtype, shape: [m, n] }, c ? [a, b, c] : [a, b], attrs);
}

/**
 * torch.nn.Linear with the HF weight layout `weight: [out, in]`: y = x·Wᵀ + b.
 * 2-D x: one Gemm (transB, bias fused). Higher ranks, `via: "matmul"` (default): MatMul against Wᵀ, then Add;
 * ORT folds the transpose into the MatMul. `via: "gemm"`: flatten the leading dims and use one Gemm. Measured
 * with `npm run bench:engine:step` (DistilBERT-base, 32×40, interleaved): the MatMul form trains ~10% faster, since
 * Gemm's bias pass costs more than the separate Add; see docs/engine.md.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor, o: { via?: "gemm" | "matmul" } = {}): Tensor {
  if (weight.rank !== 2) throw new LenpredError(`linear: weight ${weight.name} must be 2-D [out, in], got ${fmt(weight.shape)}`);
  if (x.rank === 2 && o.via !== "matmul") return gemm(x, weight, bias, { transB: true });
  const inDim = weight.shape[1]!;
  const outDim = weight.shape[0]!;
  if (o.via !== "gemm" || typeof inDim !== "number" || typeof outDim !== "number") {
    const y = matmul(x, transpose(weight, [1, 0]));
    return bias ? add(y, bias) : y;
  }
  const y2 = gemm(reshape(x, [-1, inDim]), weight, bias, { transB: true });
  const g = x.graph;
  const shape = concat([slice(shapeOf(x), [0], [-1]), ints(g, [outDim])], 0);
  return reshapeLike(y2, shape, [...x.shape.slice(0, -1), outDim]);
}

// ---------------------------------------------------------------- shape ops

export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  const p = perm ?? x.shape.map((_, i) => x.rank - 1 - i);
  if (p.length !== x.rank || [...p].sort((i, j) => i - j).some((v, i) => v !== i)) throw new LenpredError(`transpose: bad perm ${fmt(p)} for rank ${x.rank}`);
  return one(x, "Transpose", { dtype: x.dtype, shape: p.map((i) => x.shape[i]!) }, [x], { perm: attr.ints(p) });
}

/** Swap the last two axes. */
export function transposeLast2(x: Tensor): Tensor {
  const p = x.shape.map((_, i) => i);
  p[x.rank - 1] = x.rank - 2;
  p[x.rank - 2] = x.rank - 1;
  return transpose(x, p);
}

/** ONNX Reshape: `0` keeps the input dim at that position, `-1` is inferred. */
export function reshape(x: Tensor, spec: readonly number[]): Tensor {
  return one(x, "Reshape", { dtype: x.dtype, shape: reshapeShape(x.shape, spec) }, [x, ints(x.graph, spec)]);
}

/** Reshape to a runtime shape tensor (e.g. `shapeOf(y)`), with the statically known result shape. */
export function reshapeLike(x: Tensor, shape: Tensor, staticShape: Shape): Tensor {
  return one(x, "Reshape", { dtype: x.dtype, shape: staticShape }, [x, shape]);
}

export function shapeOf(x: Tensor): Tensor {
  return one(x, "Shape", { dtype: "int64", shape: [x.rank] });
}

/** The runtime size of one axis as an int64 scalar (e.g. the sequence length). */
export function dimOf(x: Tensor, axis: number): Tensor {
  const a = normAxis(axis, x.rank, "dimOf");
  return squeeze(slice(shapeOf(x), [a], [a + 1]), [0]);
}

/** [0, 1, …, n−1] as int64, n an int64 scalar tensor (e.g. `dimOf(ids, 1)` for position ids). */
export function range(n: Tensor, staticLength: Dim): Tensor {
  const g = n.graph;
  return one(n, "Range", { dtype: "int64", shape: [staticLength] }, [scalar(g, 0, "int64"), n, scalar(g, 1, "int64")]);
}

/** Number of elements as an int64 scalar. */
export function sizeOf(x: Tensor): Tensor {
  return one(x, "Size", { dtype: "int64", shape: [] });
}

export function squeeze(x: Tensor, axes: readonly number[]): Tensor {
  const ax = axes.map((a) => normAxis(a, x.rank, "squeeze"));
  for (const a of ax) if (x.shape[a] !== 1 && typeof x.shape[a] === "number") throw new LenpredError(`squeeze: axis ${a} of ${fmt(x.shape)} is not 1`);
  return one(x, "Squeeze", { dtype: x.dtype, shape: x.shape.filter((_, i) => !ax.includes(i)) }, [x, ints(x.graph, ax)]);
}

export function unsqueeze(x: Tensor, axes: readonly number[]): Tensor {
  const rank = x.rank + axes.length;
  const ax = axes.map((a) => normAxis(a, rank, "unsqueeze"));
  const shape: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) shape.push(ax.includes(i) ? 1 : x.shape[j++]!);
  return one(x, "Unsqueeze", { dtype: x.dtype, shape }, [x, ints(x.graph, ax)]);
}

/** Broadcast to a runtime shape (int64 tensor) whose static value is `staticShape`. */
export function expand(x: Tensor, shape: Tensor, staticShape: Shape): Tensor {
  return one(x, "Expand", { dtype: x.dtype, shape: broadcastShapes(x.shape, staticShape, "expand") }, [x, shape]);
}

/** Step-1 slice along `axes` (negative starts/ends count from the end; ends may exceed the dim). */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[], axes?: readonly number[]): Tensor {
  const ax = (axes ?? starts.map((_, i) => i)).map((a) => normAxis(a, x.rank, "slice"));
  if (starts.length !== ax.length || ends.length !== ax.length) throw new LenpredError(`slice: starts/ends/axes lengths differ`);
  const shape = [...x.shape];
  ax.forEach((a, i) => (shape[a] = sliceDim(x.shape[a]!, starts[i]!, ends[i]!)));
  const g = x.graph;
  return one(x, "Slice", { dtype: x.dtype, shape }, [x, ints(g, starts), ints(g, ends), ints(g, ax)]);
}

export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new LenpredError("concat: no inputs");
  const x0 = xs[0]!;
  const a = normAxis(axis, x0.rank, "concat");
  const shape = [...x0.shape];
  for (const x of xs.slice(1)) {
    if (x.rank !== x0.rank || x.dtype !== x0.dtype) throw new LenpredError(`concat: ${x.name} ${x.dtype}${fmt(x.shape)} does not match ${x0.dtype}${fmt(x0.shape)}`);
  }
  const ds = xs.map((x) => x.shape[a]!);
  shape[a] = ds.every((d) => typeof d === "number") ? (ds as number[]).reduce((p, q) => p + q, 0) : ds.join("+");
  return one(x0, "Concat", { dtype: x0.dtype, shape }, [...xs], { axis: attr.i(a) });
}

/** Gather along `axis` (an embedding lookup is `gather(table, ids, 0)`). */
export function gather(data: Tensor, indices: Tensor, axis = 0): Tensor {
  if (indices.dtype !== "int64" && indices.dtype !== "int32") throw new LenpredError(`gather: indices ${indices.name} must be int64/int32, got ${indices.dtype}`);
  const a = normAxis(axis, data.rank, "gather");
  const shape = [...data.shape.slice(0, a), ...indices.shape, ...data.shape.slice(a + 1)];
  return one(data, "Gather", { dtype: data.dtype, shape }, [data, indices], { axis: attr.i(a) });
}

/**
 * ScatterND with reduction=add: data plus `updates` accumulated at `indices` (duplicates add up). Not for
 * repeated indices with more than one intra-op thread: onnxruntime's CPU kernel races on them (lost updates,
 * non-deterministic); use `scatterElementsAdd`.
 */
export function scatterNDAdd(data: Tensor, indices: Tensor, updates: Tensor): Tensor {
  return one(data, "ScatterND", { dtype: data.dtype, shape: data.shape }, [data, indices, updates], { reduction: attr.s("add") });
}

/**
 * ScatterElements with reduction=add along `axis`: `updates[i][j]` is added at `data[indices[i][j]][j]`
 * (axis 0). Unlike ScatterND add, onnxruntime's CPU kernel runs it on one thread, so repeated indices
 * accumulate in a fixed order (ScatterND add splits rows across intra-op threads and races on them).
 */
export function scatterElementsAdd(data: Tensor, indices: Tensor, updates: Tensor, axis = 0): Tensor {
  return one(data, "ScatterElements", { dtype: data.dtype, shape: data.shape }, [data, indices, updates], { axis: attr.i(normAxis(axis, data.rank, "scatterElementsAdd")), reduction: attr.s("add") });
}

/** Zeros shaped like `x` (runtime shape). */
export function zerosLike(x: Tensor): Tensor {
  return constantOfShape(shapeOf(x), x.shape, 0, x.dtype);
}

export function constantOfShape(shape: Tensor, staticShape: Shape, value: number, dtype: DType = "float32"): Tensor {
  return one(shape, "ConstantOfShape", { dtype, shape: staticShape }, [shape], { value: attr.t({ dtype, shape: [1], data: typed(dtype, [value]) }) });
}

// ---------------------------------------------------------------- reductions and normalisation

function reduce(op: string, x: Tensor, axes: readonly number[] | undefined, keepdims: boolean): Tensor {
  const ax = (axes ?? x.shape.map((_, i) => i)).map((a) => normAxis(a, x.rank, op));
  const shape = keepdims ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !ax.includes(i));
  return one(x, op, { dtype: x.dtype, shape }, [x, ints(x.graph, ax)], { keepdims: attr.i(keepdims ? 1 : 0) });
}

/** Sum over `axes` (all axes when omitted). */
export const reduceSum = (x: Tensor, axes?: readonly number[], keepdims = false): Tensor => reduce("ReduceSum", x, axes, keepdims);
export const reduceMean = (x: Tensor, axes?: readonly number[], keepdims = false): Tensor => reduce("ReduceMean", x, axes, keepdims);

export function softmax(x: Tensor, axis = -1): Tensor {
  return one(x, "Softmax", { dtype: x.dtype, shape: x.shape }, [x], { axis: attr.i(normAxis(axis, x.rank, "softmax")) });
}

/**
 * LayerNormalization over the axes from `axis` on. The node also emits the mean and inverse std-dev (shape
 * with the normalised axes kept as 1), which the backward pass reuses.
 */
export function layerNorm(x: Tensor, scale: Tensor, bias: Tensor | undefined, o: { axis?: number; epsilon?: number } = {}): Tensor {
  const axis = normAxis(o.axis ?? -1, x.rank, "layerNorm");
  const statShape = x.shape.map((d, i) => (i < axis ? d : 1));
  // Statistics are float32 (the ONNX default stash type; ORT has no float64-stash kernel).
  const stash: DType = "float32";
  const outs = x.graph.node("LayerNormalization", bias ? [x, scale, bias] : [x, scale], [
    { dtype: x.dtype, shape: x.shape },
    { dtype: stash, shape: statShape },
    { dtype: stash, shape: statShape },
  ], { axis: attr.i(axis), epsilon: attr.f(o.epsilon ?? 1e-5) });
  return outs[0]!;
}

/**
 * Dropout. In training mode this is ONNX Dropout with training_mode = true, whose boolean mask output the
 * backward pass reuses; otherwise (or with ratio 0) it is the identity and no node is added.
 */
export function dropout(x: Tensor, ratio: number, training: boolean, seed?: number): Tensor {
  if (!training || ratio === 0) return x;
  if (!(ratio > 0 && ratio < 1)) throw new LenpredError(`dropout: ratio must be in [0, 1), got ${ratio}`);
  const g = x.graph;
  const attrs: Record<string, Attr> = seed === undefined ? {} : { seed: attr.i(seed) };
  const outs = g.node("Dropout", [x, scalar(g, ratio, x.dtype), g.constant({ dtype: "bool", shape: [], data: new Uint8Array([1]) })], [
    { dtype: x.dtype, shape: x.shape },
    { dtype: "bool", shape: x.shape },
  ], attrs);
  return outs[0]!;
}

// ---------------------------------------------------------------- losses

export interface CrossEntropyOptions {
  reduction?: "mean" | "sum" | "none";
  /** Targets equal to this contribute nothing (and do not count in the mean). */
  ignoreIndex?: number;
}

/** Softmax cross-entropy of logits [N, C] against int64 class indices [N]. */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor, o: CrossEntropyOptions = {}): Tensor {
  if (logits.rank !== 2 || labels.rank !== 1) throw new LenpredError(`softmaxCrossEntropy: want logits [N, C] and labels [N], got ${fmt(logits.shape)} and ${fmt(labels.shape)}`);
  if (labels.dtype !== "int64" && labels.dtype !== "int32") throw new LenpredError(`softmaxCrossEntropy: labels must be int64/int32, got ${labels.dtype}`);
  const reduction = o.reduction ?? "mean";
  const attrs: Record<string, Attr> = { reduction: attr.s(reduction) };
  if (o.ignoreIndex !== undefined) attrs.ignore_index = attr.i(o.ignoreIndex);
  const outs = logits.graph.node("SoftmaxCrossEntropyLoss", [logits, labels], [
    { dtype: logits.dtype, shape: reduction === "none" ? [logits.shape[0]!] : [] },
    { dtype: logits.dtype, shape: logits.shape },
  ], attrs);
  return outs[0]!;
}

/** Mean squared error over all elements. */
export function mseLoss(pred: Tensor, target: Tensor): Tensor {
  const d = sub(pred, target);
  return reduceMean(mul(d, d));
}

/** Mean absolute error over all elements. */
export function l1Loss(pred: Tensor, target: Tensor): Tensor {
  return reduceMean(abs(sub(pred, target)));
}

/**
 * Pinball (quantile) loss, mean over all elements: pred [N, Q] against target [N, 1] (or [N, Q]) and the
 * quantile levels q [Q]. With d = target − pred: max(q·d, (q−1)·d) = q·d + relu(−d).
 */
export function pinballLoss(pred: Tensor, target: Tensor, quantiles: readonly number[] | Tensor): Tensor {
  const q = quantiles instanceof Tensor ? quantiles : constant(pred.graph, quantiles as number[], [quantiles.length], pred.dtype);
  const d = sub(target, pred);
  return reduceMean(add(mul(q, d), relu(neg(d))));
}

/** Number of elements as a static number, when every dim is known. */
export function staticSize(shape: Shape): number | undefined {
  const p = dimProduct(shape);
  return typeof p === "number" ? p : undefined;
}
