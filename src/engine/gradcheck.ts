/**
 * Gradient checking: the analytic gradients of the emitted ONNX gradient graph against central finite
 * differences of the same forward graph, both run by onnxruntime. The scalar being differentiated is
 * sum(out · r) with a fixed random r, so every output element's gradient path is exercised.
 */
import { createRng } from "../util/rng.js";
import { grad } from "./autodiff.js";
import { type ConstData, type DType, Graph, type Tensor } from "./graph.js";
import * as op from "./ops.js";
import { Session, toOrt } from "./session.js";

export interface CheckInput extends ConstData {
  name: string;
  /** Differentiate w.r.t. this input (default: true for float inputs). */
  wrt?: boolean;
}

export interface GradCheckResult {
  /** Max |analytic − numeric| / max(1, |numeric|) over every element checked. */
  maxError: number;
  analytic: Float64Array[];
  numeric: Float64Array[];
}

export interface GradCheckOptions {
  eps?: number;
  seed?: number;
}

/** Run a gradient check of `build(inputs)`; returns the worst mixed absolute/relative error. */
export async function gradCheck(build: (inputs: Tensor[], g: Graph) => Tensor, inputs: readonly CheckInput[], o: GradCheckOptions = {}): Promise<GradCheckResult> {
  const g = new Graph("gradcheck");
  const ts = inputs.map((i) => g.input(i.name, i.dtype, i.shape));
  const out = build(ts, g);
  const n = op.staticSize(out.shape);
  if (n === undefined) throw new Error(`gradCheck: output shape must be static, got [${out.shape.join(", ")}]`);
  const rng = createRng(o.seed ?? 7);
  const r = op.constant(g, Array.from({ length: n }, () => rng.next() * 2 - 1), out.shape as number[], out.dtype);
  const loss = op.reduceSum(op.mul(out, r));
  const wrt = inputs.map((i, k) => ({ i, k })).filter(({ i }) => (i.wrt ?? op.isFloat(i.dtype)));
  const grads = grad(loss, wrt.map(({ k }) => ts[k]!));
  const outputs: Record<string, Tensor> = { loss };
  grads.forEach((t, j) => (outputs[`grad_${j}`] = t));
  const full = await Session.create(g.toOnnx({ outputs }), { optimization: "disabled" });
  const fwd = await Session.create(g.toOnnx({ outputs: { loss } }), { optimization: "disabled" });
  try {
    const feeds = Object.fromEntries(inputs.map((i) => [i.name, toOrt(i)]));
    const res = await full.run(feeds);
    const analytic = grads.map((_, j) => Float64Array.from(res[`grad_${j}`]!.data as Float32Array));
    const eps = o.eps ?? (inputs.some((i) => i.dtype === "float32") ? 1e-2 : 1e-6);
    const numeric: Float64Array[] = [];
    let maxError = 0;
    for (const [j, { i }] of wrt.entries()) {
      const data = i.data as Float32Array | Float64Array;
      const num = new Float64Array(data.length);
      for (let e = 0; e < data.length; e++) {
        const orig = data[e]!;
        data[e] = orig + eps;
        const lp = Number((await fwd.run(feeds)).loss!.data[0]);
        data[e] = orig - eps;
        const lm = Number((await fwd.run(feeds)).loss!.data[0]);
        data[e] = orig;
        num[e] = (lp - lm) / (2 * eps);
        const err = Math.abs(num[e]! - analytic[j]![e]!) / Math.max(1, Math.abs(num[e]!));
        if (!(err <= maxError)) maxError = Number.isNaN(err) ? Infinity : Math.max(maxError, err);
      }
      numeric.push(num);
    }
    return { maxError, analytic, numeric };
  } finally {
    await full.dispose();
    await fwd.dispose();
  }
}

/** Random input data for checks: uniform in [lo, hi). */
export function randomInput(name: string, shape: number[], dtype: DType = "float64", seed = 1, lo = -1, hi = 1): CheckInput {
  const rng = createRng(`${name}:${seed}`);
  const n = shape.reduce((a, b) => a * b, 1);
  const vals = Array.from({ length: n }, () => lo + (hi - lo) * rng.next());
  const data = dtype === "float32" ? Float32Array.from(vals) : Float64Array.from(vals);
  return { name, dtype, shape, data };
}
