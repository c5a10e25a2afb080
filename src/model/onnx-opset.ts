/**
 * Lower an inference graph built with opset-20 ops to an older opset, for runtimes and checkers that stop at
 * opset 17 (onnxruntime < 1.16, Debian's python3-onnx 1.12, many converters). What changes below 20/18:
 *   - Gelu (opset 20) → x · 0.5 · (1 + Erf(x / √2)), the exact form (Erf is opset 9);
 *   - Reduce{Mean,Max,Min,Prod,L1,L2,LogSum,LogSumExp,SumSquare} take `axes` as an input from opset 18 on,
 *     an attribute before (ReduceSum switched at 13, which is below anything supported here).
 * Every other op the DistilBERT export uses (MatMul, Gemm, LayerNormalization-17, Softmax, Gather, Reshape,
 * Unsqueeze, Slice, Concat, Cast, Range, Shape, …) has the same signature in 17. The graph is rebuilt node by
 * node with the same value names, so the lowered export feeds and reads exactly like the opset-20 one.
 */
import { attr, Graph, type Node, type Tensor } from "../engine/graph.js";
import { LenpredError } from "../util/errors.js";

/** Opsets the inference export can target. */
export const EXPORT_OPSETS = [17, 20] as const;
export type ExportOpset = (typeof EXPORT_OPSETS)[number];

const REDUCE_AXES_INPUT_SINCE_18 = new Set(["ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]);

export function lowerGraph(g: Graph, opset: ExportOpset): Graph {
  if (opset >= 20) return g;
  const out = new Graph(g.name);
  const map = new Map<string, Tensor>();
  const get = (t: Tensor | undefined): Tensor | undefined => {
    if (!t) return undefined;
    const m = map.get(t.name);
    if (!m) throw new LenpredError(`opset lowering: value '${t.name}' used before it is defined`);
    return m;
  };
  for (const t of g.inputs) map.set(t.name, out.input(t.name, t.dtype, t.shape));
  for (const [name, init] of g.initializers) map.set(name, out.initializer(name, init.data));
  let consts: { half: Tensor; one: Tensor; sqrt2: Tensor } | undefined;
  for (const n of g.nodes) {
    const inputs = n.inputs.map(get);
    const outs = n.outputs.map((t) => ({ dtype: t.dtype, shape: t.shape, name: t.name }));
    let results: Tensor[];
    if (n.op === "Gelu" && n.domain === "") {
      const approx = n.attrs.approximate;
      if (approx && approx.kind === "string" && approx.v !== "none") throw new LenpredError(`opset ${opset} export: Gelu approximate='${approx.v}' is not lowered`);
      const x = inputs[0]!;
      if (x.dtype !== "float32") throw new LenpredError(`opset ${opset} export: Gelu on ${x.dtype} is not lowered`);
      consts ??= {
        half: out.initializer("lenpred_opset_lowering_half", { dtype: "float32", shape: [], data: Float32Array.of(0.5) }),
        one: out.initializer("lenpred_opset_lowering_one", { dtype: "float32", shape: [], data: Float32Array.of(1) }),
        sqrt2: out.initializer("lenpred_opset_lowering_sqrt2", { dtype: "float32", shape: [], data: Float32Array.of(Math.SQRT2) }),
      };
      const y = outs[0]!;
      const step = (op: string, a: Tensor, b: Tensor | undefined, suffix: string) =>
        out.node(op, b ? [a, b] : [a], [{ dtype: y.dtype, shape: y.shape, name: `${y.name}__gelu_${suffix}` }])[0]!;
      const erf = step("Erf", step("Div", x, consts.sqrt2, "scaled"), undefined, "erf");
      const phi2 = step("Add", erf, consts.one, "1p");
      const xh = step("Mul", x, consts.half, "half");
      results = out.node("Mul", [xh, phi2], [y]);
    } else if (opset < 18 && n.domain === "" && REDUCE_AXES_INPUT_SINCE_18.has(n.op) && n.inputs[1]) {
      const axesInit = g.initializers.get(n.inputs[1].name);
      if (!axesInit) throw new LenpredError(`opset ${opset} export: ${n.op} with computed axes cannot be lowered`);
      const axes = Array.from(axesInit.data.data as ArrayLike<number | bigint>, Number);
      results = out.node(n.op, [inputs[0]], outs, { ...n.attrs, axes: attr.ints(axes) });
    } else {
      checkSupported(n, opset);
      results = out.node(n.op, inputs, outs, { ...n.attrs }, n.domain);
    }
    n.outputs.forEach((t, i) => map.set(t.name, results[i]!));
  }
  for (const [name, t] of g.outputs) out.output(name, get(t)!);
  return out;
}

/** Ops (default domain) whose signature changed after opset 17 in a way lowering does not handle. */
function checkSupported(n: Node, opset: number): void {
  if (n.domain !== "") return;
  const changed = n.op === "Split" && n.attrs.num_outputs !== undefined || n.op === "Pad" && n.inputs.length > 3;
  if (changed) throw new LenpredError(`opset ${opset} export: ${n.op} as built here needs a newer opset`);
}
