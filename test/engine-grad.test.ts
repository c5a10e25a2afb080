/**
 * Every VJP rule against central finite differences of the same ONNX forward graph (run by onnxruntime).
 * float64 where ORT has float64 kernels (tight tolerance); float32 for Gelu/Erf (no float64 Erf in ORT) and
 * Cast round-trips, with a tolerance that matches float32 differencing noise.
 */
import { describe, expect, it } from "vitest";
import { grad } from "../src/engine/autodiff.js";
import { Graph, type Tensor } from "../src/engine/graph.js";
import { type CheckInput, gradCheck, randomInput as R } from "../src/engine/gradcheck.js";
import * as op from "../src/engine/ops.js";
import { f32, Session } from "../src/engine/session.js";

type Build = (xs: Tensor[], g: Graph) => Tensor;
const TOL = { float64: 1e-6, float32: 3e-3 };

const ids = (name: string, shape: number[], vals: number[]): CheckInput => ({ name, dtype: "int64", shape, data: BigInt64Array.from(vals.map(BigInt)) });
const f32in = (i: CheckInput): CheckInput => ({ ...i, dtype: "float32", data: Float32Array.from(i.data as Float64Array) });

const cases: [string, Build, CheckInput[], ("float64" | "float32")?][] = [
  ["Add with broadcasting [2,3,4] + [3,1]", ([a, b]) => op.add(a!, b!), [R("a", [2, 3, 4]), R("b", [3, 1])]],
  ["Add of a scalar-shaped tensor", ([a, b]) => op.add(a!, b!), [R("a", [2, 3]), R("b", [])]],
  ["Sub with broadcasting [2,3] - [3]", ([a, b]) => op.sub(a!, b!), [R("a", [2, 3]), R("b", [3])]],
  ["Mul with broadcasting [2,3] * [2,1]", ([a, b]) => op.mul(a!, b!), [R("a", [2, 3]), R("b", [2, 1])]],
  ["Div with broadcasting [2,3] / [3]", ([a, b]) => op.div(a!, b!), [R("a", [2, 3]), R("b", [3], "float64", 1, 0.5, 2)]],
  ["MatMul [2,3,4] @ [4,5] (flattened weight grad)", ([a, b]) => op.matmul(a!, b!), [R("a", [2, 3, 4]), R("b", [4, 5])]],
  ["MatMul batched with broadcast [2,2,3,4] @ [2,1,4,5]", ([a, b]) => op.matmul(a!, b!), [R("a", [2, 2, 3, 4]), R("b", [2, 1, 4, 5])]],
  ["Gemm transB alpha beta", ([a, b, c]) => op.gemm(a!, b!, c, { transB: true, alpha: 0.5, beta: 2 }), [R("a", [3, 4]), R("b", [5, 4]), R("c", [5])]],
  ["Gemm transA with column bias", ([a, b, c]) => op.gemm(a!, b!, c, { transA: true }), [R("a", [4, 3]), R("b", [4, 5]), R("c", [3, 1])]],
  ["Gemm transA transB", ([a, b]) => op.gemm(a!, b!, undefined, { transA: true, transB: true }), [R("a", [4, 3]), R("b", [5, 4])]],
  ["linear on 3-D input (HF weight layout, MatMul form)", ([x, w, b]) => op.linear(x!, w!, b), [R("x", [2, 3, 4]), R("w", [5, 4]), R("b", [5])]],
  ["linear on 3-D input (flattened Gemm form)", ([x, w, b]) => op.linear(x!, w!, b, { via: "gemm" }), [R("x", [2, 3, 4]), R("w", [5, 4]), R("b", [5])]],
  ["linear on 2-D input via MatMul", ([x, w]) => op.linear(x!, w!, undefined, { via: "matmul" }), [R("x", [3, 4]), R("w", [5, 4])]],
  ["Softmax last axis", ([a]) => op.softmax(a!, -1), [R("a", [2, 5], "float64", 1, -3, 3)]],
  ["Softmax middle axis", ([a]) => op.softmax(a!, 1), [R("a", [2, 3, 2])]],
  ["LayerNormalization eps 1e-12", ([x, s, b]) => op.layerNorm(x!, s!, b, { epsilon: 1e-12 }), [R("x", [2, 3, 4]), R("s", [4]), R("b", [4])]],
  ["LayerNormalization over two axes", ([x, s]) => op.layerNorm(x!, s!, undefined, { axis: 1 }), [R("x", [2, 3, 2]), R("s", [3, 2])]],
  ["Gelu (exact erf form)", ([a]) => op.gelu(a!), [R("a", [2, 5], "float64", 1, -3, 3)], "float32"],
  ["Erf", ([a]) => op.erf(a!), [R("a", [2, 5])], "float32"],
  ["Relu", ([a]) => op.relu(a!), [R("a", [2, 5])]],
  ["Tanh", ([a]) => op.tanh(a!), [R("a", [2, 5])]],
  ["Sigmoid", ([a]) => op.sigmoid(a!), [R("a", [2, 5])]],
  ["Exp", ([a]) => op.exp(a!), [R("a", [2, 5])]],
  ["Log", ([a]) => op.log(a!), [R("a", [2, 5], "float64", 1, 0.5, 2)]],
  ["Sqrt", ([a]) => op.sqrt(a!), [R("a", [2, 5], "float64", 1, 0.5, 2)]],
  ["Neg and Abs", ([a]) => op.abs(op.neg(a!)), [R("a", [2, 5])]],
  ["Pow with constant exponent", ([a]) => op.pow(a!, 3), [R("a", [2, 5], "float64", 1, 0.5, 2)]],
  ["Max/Min with broadcasting", ([a, b]) => op.add(op.max(a!, b!), op.min(a!, op.mul(b!, 2))), [R("a", [2, 3]), R("b", [3], "float64", 3)]],
  ["Gather axis 0 (embedding) -> ScatterND add, repeated ids", ([e, i]) => op.gather(e!, i!, 0), [R("e", [5, 3]), ids("i", [2, 3], [0, 2, 2, 4, 0, 1])]],
  ["Gather axis 1 (position 0 pooling)", ([e, i]) => op.gather(e!, i!, 1), [R("e", [2, 5, 3]), ids("i", [], [0])]],
  ["Gather axis 1 with 2-D indices", ([e, i]) => op.gather(e!, i!, 1), [R("e", [2, 4, 3]), ids("i", [2, 2], [3, 0, 3, 1])]],
  ["Reshape and Transpose (attention heads)", ([a]) => op.transpose(op.reshape(a!, [0, 0, 2, 2]), [0, 2, 1, 3]), [R("a", [2, 3, 4])]],
  ["Squeeze/Unsqueeze", ([a]) => op.squeeze(op.mul(op.unsqueeze(a!, [1]), 3), [1]), [R("a", [2, 3])]],
  ["ReduceSum keepdims=0", ([a]) => op.reduceSum(a!, [1]), [R("a", [2, 3, 4])]],
  ["ReduceMean keepdims=1 over two axes", ([a]) => op.reduceMean(a!, [0, 2], true), [R("a", [2, 3, 4])]],
  ["Slice with negative end", ([a]) => op.slice(a!, [1, 0], [3, -1], [1, 2]), [R("a", [2, 4, 3])]],
  ["Slice with open end (position 0 and tail)", ([a]) => op.add(op.slice(a!, [0], [1], [1]), op.reduceSum(op.slice(a!, [1], [1e9], [1]), [1], true)), [R("a", [2, 4, 3])]],
  ["Concat", ([a, b]) => op.concat([a!, b!], 1), [R("a", [2, 3]), R("b", [2, 2])]],
  ["Where masking with broadcast", ([a, b]) => op.where(op.greater(a!, 0), a!, b!), [R("a", [2, 3]), R("b", [3])]],
  ["Where with a large negative fill (attention mask)", ([s, m]) => op.softmax(op.where(op.equal(m!, 0), -3.4e38, s!)), [R("s", [2, 4]), ids("m", [1, 4], [1, 1, 0, 1])]],
  ["Cast float32 <-> float64", ([a]) => op.cast(op.mul(op.cast(a!, "float64"), 2), "float32"), [R("a", [2, 3])], "float32"],
  ["Expand", ([a], g) => op.expand(a!, op.ints(g, [2, 3]), [2, 3]), [R("a", [3])]],
  ["SoftmaxCrossEntropyLoss mean", ([a, l]) => op.softmaxCrossEntropy(a!, l!), [R("a", [3, 4]), ids("l", [3], [1, 3, 0])]],
  ["SoftmaxCrossEntropyLoss ignore_index", ([a, l]) => op.softmaxCrossEntropy(a!, l!, { ignoreIndex: -100 }), [R("a", [3, 4]), ids("l", [3], [1, -100, 0])]],
  ["SoftmaxCrossEntropyLoss sum", ([a, l]) => op.softmaxCrossEntropy(a!, l!, { reduction: "sum" }), [R("a", [3, 4]), ids("l", [3], [2, 2, 1])]],
  ["SoftmaxCrossEntropyLoss none", ([a, l]) => op.softmaxCrossEntropy(a!, l!, { reduction: "none" }), [R("a", [3, 4]), ids("l", [3], [2, 0, 1])]],
  ["MSE loss", ([a, b]) => op.mseLoss(a!, b!), [R("a", [3, 2]), R("b", [3, 2])]],
  ["L1 loss", ([a, b]) => op.l1Loss(a!, b!), [R("a", [3, 2]), R("b", [3, 2])]],
  ["pinball loss, 3 quantiles vs a [N,1] target", ([a, b]) => op.pinballLoss(a!, b!, [0.1, 0.5, 0.9]), [R("a", [4, 3]), R("b", [4, 1])]],
  ["a tiny attention block", ([x, wq, wk, g, b]) => {
    const q = op.linear(x!, wq!);
    const k = op.linear(x!, wk!);
    const att = op.softmax(op.div(op.matmul(q, op.transposeLast2(k)), 2));
    return op.layerNorm(op.add(x!, op.matmul(att, x!)), g!, b, { epsilon: 1e-12 });
  }, [R("x", [2, 3, 4]), R("wq", [4, 4]), R("wk", [4, 4]), R("g", [4]), R("b", [4])]],
];

describe("VJP rules vs central finite differences", () => {
  for (const [name, build, inputs, dtype = "float64"] of cases) {
    it(`${name} (${dtype})`, async () => {
      const ins = dtype === "float32" ? inputs.map((i) => (i.dtype === "float64" ? f32in(i) : i)) : inputs;
      const r = await gradCheck(build, ins);
      expect(r.analytic.length).toBeGreaterThan(0);
      // The gradients are not trivially zero (a rule returning zeros would pass an all-zero numeric check).
      expect(r.numeric.some((n) => n.some((v) => Math.abs(v) > 1e-3))).toBe(true);
      expect(r.maxError).toBeLessThan(TOL[dtype]);
    });
  }
});

describe("Dropout backward uses the forward's mask", () => {
  it("grad = dy * mask / (1 - p), and output = x * mask / (1 - p)", async () => {
    const g = new Graph();
    const x = g.input("x", "float32", [4, 50]);
    const r = g.input("r", "float32", [4, 50]);
    const y = op.dropout(x, 0.3, true);
    const mask = y.producer!.outputs[1]!;
    const [gx] = grad(op.reduceSum(op.mul(y, r)), [x]);
    const s = await Session.create(g.toOnnx({ outputs: { y, mask, gx: gx! } }));
    const xs = Float32Array.from({ length: 200 }, (_, i) => 1 + i / 100);
    const rs = Float32Array.from({ length: 200 }, (_, i) => Math.cos(i));
    const out = await s.run({ x: f32(xs, [4, 50]), r: f32(rs, [4, 50]) });
    const m = out.mask!.data as Uint8Array;
    const kept = Array.from(m).filter(Boolean).length;
    expect(kept).toBeGreaterThan(100); // ~70% of 200 kept
    expect(kept).toBeLessThan(190);
    const yv = out.y!.data as Float32Array;
    const gv = out.gx!.data as Float32Array;
    for (let i = 0; i < 200; i++) {
      expect(yv[i]).toBeCloseTo(m[i] ? xs[i]! / 0.7 : 0, 5);
      expect(gv[i]).toBeCloseTo(m[i] ? rs[i]! / 0.7 : 0, 5);
    }
    await s.dispose();
  });

  it("draws a fresh mask every run; a seed makes the sequence reproducible across sessions", async () => {
    const g = new Graph();
    const x = g.input("x", "float32", [64]);
    const y = op.dropout(x, 0.5, true, 42);
    const bytes = g.toOnnx({ outputs: { m: y.producer!.outputs[1]! } });
    const seqs: string[][] = [];
    for (let k = 0; k < 2; k++) {
      const s = await Session.create(bytes);
      const runs: string[] = [];
      for (let r = 0; r < 2; r++) runs.push(Array.from((await s.run({ x: f32(new Float32Array(64).fill(1), [64]) })).m!.data as Uint8Array).join(""));
      seqs.push(runs);
      await s.dispose();
    }
    expect(seqs[0]![0]).not.toEqual(seqs[0]![1]);
    expect(seqs[1]).toEqual(seqs[0]);
  });

  it("ratio 0 or inference mode is the identity (no node)", () => {
    const g = new Graph();
    const x = g.input("x", "float32", [2]);
    expect(op.dropout(x, 0, true)).toBe(x);
    expect(op.dropout(x, 0.1, false)).toBe(x);
    expect(g.nodes.length).toBe(0);
  });
});

describe("grad()", () => {
  it("accumulates gradients of a value used twice and returns zeros for unused params", async () => {
    const g = new Graph();
    const x = g.input("x", "float32", [3]);
    const u = g.input("u", "float32", [3]);
    const loss = op.reduceSum(op.mul(op.mul(x, x), x)); // d/dx = 3x²
    const [gx, gu] = grad(loss, [x, u]);
    const s = await Session.create(g.toOnnx({ outputs: { gx: gx!, gu: gu! } }));
    const out = await s.run({ x: f32([1, -2, 3], [3]), u: f32([5, 5, 5], [3]) });
    expect(Array.from(out.gx!.data as Float32Array)).toEqual([3, 12, 27]);
    expect(Array.from(out.gu!.data as Float32Array)).toEqual([0, 0, 0]);
    await s.dispose();
  });

  it("names the op when a rule is missing", () => {
    const g = new Graph();
    const x = g.input("x", "float32", [3]);
    const y = g.node("Softplus", [x], [{ dtype: "float32", shape: [3] }])[0]!;
    expect(() => grad(op.reduceSum(y), [x])).toThrow(/no VJP rule for op Softplus/);
  });

  it("works with dynamic batch/seq axes (runtime shapes in reshape/reduce/broadcast grads)", async () => {
    const g = new Graph();
    const x = g.input("x", "float32", ["batch", "seq", 4]);
    const w = g.input("w", "float32", [3, 4]);
    const b = g.input("b", "float32", [3]);
    const h = op.reshape(op.linear(x, w, b), [-1, 3]);
    const loss = op.reduceMean(op.mul(h, h));
    const [gw, gb] = grad(loss, [w, b]);
    const s = await Session.create(g.toOnnx({ outputs: { loss, gw: gw!, gb: gb! } }));
    for (const [B, S] of [[1, 2], [3, 5]] as const) {
      const xs = Float32Array.from({ length: B * S * 4 }, (_, i) => Math.sin(i));
      const ws = Float32Array.from({ length: 12 }, (_, i) => Math.cos(i));
      const bs = Float32Array.from([0.1, -0.2, 0.3]);
      const out = await s.run({ x: f32(xs, [B, S, 4]), w: f32(ws, [3, 4]), b: f32(bs, [3]) });
      // Reference in plain JS: loss = mean((x·wᵀ + b)²) over N·3 values.
      const N = B * S;
      const gwRef = new Float64Array(12);
      const gbRef = new Float64Array(3);
      for (let n = 0; n < N; n++) {
        for (let o = 0; o < 3; o++) {
          let y = bs[o]!;
          for (let i = 0; i < 4; i++) y += xs[n * 4 + i]! * ws[o * 4 + i]!;
          const dy = (2 * y) / (N * 3);
          gbRef[o]! += dy;
          for (let i = 0; i < 4; i++) gwRef[o * 4 + i]! += dy * xs[n * 4 + i]!;
        }
      }
      const gwv = out.gw!.data as Float32Array;
      gwRef.forEach((v, i) => expect(gwv[i]).toBeCloseTo(v, 5));
      const gbv = out.gb!.data as Float32Array;
      gbRef.forEach((v, i) => expect(gbv[i]).toBeCloseTo(v, 5));
    }
    await s.dispose();
  });
});
