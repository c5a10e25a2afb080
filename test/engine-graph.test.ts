/** Graph building, shape inference, ONNX serialization and the session wrapper. */
import { describe, expect, it } from "vitest";
import { Graph } from "../src/engine/graph.js";
import * as op from "../src/engine/ops.js";
import { f32, i64, ortSessionOptions, Session } from "../src/engine/session.js";
import { broadcastShapes, reshapeShape } from "../src/engine/shape.js";

describe("shape inference", () => {
  it("broadcasts numbers and named dims, and refuses ambiguous pairs", () => {
    expect(broadcastShapes(["batch", 1, 768], [12, 1])).toEqual(["batch", 12, 768]);
    expect(broadcastShapes(["batch", "seq"], [1, "seq"])).toEqual(["batch", "seq"]);
    expect(() => broadcastShapes([3, 4], [5, 4])).toThrow(/cannot broadcast/);
    expect(() => broadcastShapes(["batch"], ["seq"])).toThrow(/dynamic axes/);
  });

  it("infers reshape outputs with 0 and -1 over named dims", () => {
    expect(reshapeShape(["batch", "seq", 768], [-1, 768])).toEqual(["batch*seq", 768]);
    expect(reshapeShape(["batch", "seq", 768], [0, 0, 12, 64])).toEqual(["batch", "seq", 12, 64]);
    expect(reshapeShape(["batch*seq", 768], [-1, 2, 384])).toEqual(["batch*seq", 2, 384]);
    expect(() => reshapeShape([2, 3], [4, 2])).toThrow(/cannot reshape/);
  });

  it("gives ops the shapes of the HF attention block", () => {
    const g = new Graph();
    const x = g.input("x", "float32", ["batch", "seq", 768]);
    const w = g.input("w", "float32", [768, 768]);
    const q = op.transpose(op.reshape(op.linear(x, w), [0, 0, 12, 64]), [0, 2, 1, 3]);
    expect(q.shape).toEqual(["batch", 12, "seq", 64]);
    const s = op.matmul(q, op.transposeLast2(q));
    expect(s.shape).toEqual(["batch", 12, "seq", "seq"]);
    expect(op.gather(x, op.scalar(g, 0, "int64"), 1).shape).toEqual(["batch", 768]);
    expect(op.slice(x, [0], [1], [1]).shape).toEqual(["batch", 1, 768]);
    expect(op.reduceMean(x, [-1], true).shape).toEqual(["batch", "seq", 1]);
  });

  it("rejects dtype mismatches with the tensor names", () => {
    const g = new Graph();
    const a = g.input("a", "float32", [2]);
    const b = g.input("b", "float64", [2]);
    expect(() => op.add(a, b)).toThrow(/dtype mismatch float32 vs float64 \(a, b\)/);
    expect(() => g.input("a", "float32", [1])).toThrow(/duplicate tensor name 'a'/);
  });
});

describe("ONNX serialization", () => {
  it("declares named dynamic axes that ORT reports back and runs at several sizes", async () => {
    const g = new Graph();
    const ids = g.input("input_ids", "int64", ["batch", "seq"]);
    const table = g.initializer("emb", { dtype: "float32", shape: [5, 2], data: Float32Array.from({ length: 10 }, (_, i) => i) });
    const pos = op.range(op.dimOf(ids, 1), "seq");
    const y = op.add(op.gather(table, ids), op.unsqueeze(op.cast(pos, "float32"), [1]));
    const bytes = g.toOnnx({ outputs: { y } });
    const s = await Session.create(bytes);
    const meta = (s.inner as unknown as { inputMetadata: { name: string; shape: (number | string)[] }[] }).inputMetadata;
    expect(meta[0]).toMatchObject({ name: "input_ids", shape: ["batch", "seq"] });
    for (const [b, n] of [[1, 3], [2, 4]] as const) {
      const idv = Array.from({ length: b * n }, (_, i) => i % 5);
      const out = (await s.run({ input_ids: i64(idv, [b, n]) })).y!;
      expect(out.dims).toEqual([b, n, 2]);
      const d = out.data as Float32Array;
      idv.forEach((id, k) => {
        expect(d[2 * k]).toBe(2 * id + (k % n));
        expect(d[2 * k + 1]).toBe(2 * id + 1 + (k % n));
      });
    }
    await s.dispose();
  });

  it("keeps only what the outputs need, and can demote initializers to inputs", async () => {
    const g = new Graph();
    const x = g.input("x", "float32", [2]);
    const big = g.initializer("big", { dtype: "float32", shape: [10000], data: new Float32Array(10000) });
    const w = g.initializer("w", { dtype: "float32", shape: [2], data: Float32Array.from([2, 3]) });
    const y = op.mul(x, w);
    op.add(op.reduceSum(big), 1); // unused by y
    const small = g.toOnnx({ outputs: { y } });
    expect(small.length).toBeLessThan(2000); // the 40 kB initializer was dropped
    const s1 = await Session.create(small);
    expect(Array.from((await s1.run({ x: f32([1, 1], [2]) })).y!.data as Float32Array)).toEqual([2, 3]);
    // w as an input instead of embedded data
    const s2 = await Session.create(g.toOnnx({ outputs: { y }, inputs: [x, w] }));
    expect(s2.inputNames).toEqual(["x", "w"]);
    expect(Array.from((await s2.run({ x: f32([1, 1], [2]), w: f32([5, 7], [2]) })).y!.data as Float32Array)).toEqual([5, 7]);
    await expect(s2.run({ x: f32([1, 1], [2]) })).rejects.toThrow(/missing model input\(s\): w/);
    await s1.dispose();
    await s2.dispose();
  });

  it("names outputs in place, passes inputs through, and serves one value under two names", async () => {
    const g = new Graph();
    const x = g.input("x", "float32", [2]);
    const y = op.neg(x);
    const s = await Session.create(g.toOnnx({ outputs: { a: y, b: y, c: x, d: op.mul(y, 2) } }));
    const out = await s.run({ x: f32([1, -2], [2]) });
    expect(Array.from(out.a!.data as Float32Array)).toEqual([-1, 2]);
    expect(Array.from(out.b!.data as Float32Array)).toEqual([-1, 2]);
    expect(Array.from(out.c!.data as Float32Array)).toEqual([1, -2]);
    expect(Array.from(out.d!.data as Float32Array)).toEqual([-2, 4]);
    await s.dispose();
  });

  it("refuses an output that depends on an undeclared input", () => {
    const g = new Graph();
    const x = g.input("x", "float32", [2]);
    const y = op.neg(x);
    expect(() => g.toOnnx({ outputs: { y }, inputs: [] })).toThrow(/depends on input 'x', which is not declared/);
  });

  it("reports an ORT load failure as a LenpredError", async () => {
    const g = new Graph();
    const x = g.input("x", "float32", [2]);
    const y = g.node("NoSuchOp", [x], [{ dtype: "float32", shape: [2] }])[0]!;
    await expect(Session.create(g.toOnnx({ outputs: { y } }))).rejects.toThrow(/onnxruntime could not load the model/);
  });
});

describe("session options", () => {
  it("defaults to 2 threads, spinning off, full optimisation, cpu", () => {
    const o = ortSessionOptions();
    expect(o.intraOpNumThreads).toBe(2);
    expect(o.graphOptimizationLevel).toBe("all");
    expect(o.executionProviders).toEqual(["cpu"]);
    expect((o.extra as { session: { intra_op: { allow_spinning: string } } }).session.intra_op.allow_spinning).toBe("0");
    const c = ortSessionOptions({ threads: 1, spinning: true, optimization: "basic", executionProviders: ["cuda", "cpu"] });
    expect(c.intraOpNumThreads).toBe(1);
    expect((c.extra as { session: { intra_op: { allow_spinning: string } } }).session.intra_op.allow_spinning).toBe("1");
    expect(c.executionProviders).toEqual(["cuda", "cpu"]);
  });
});
