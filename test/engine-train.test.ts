/**
 * The training step: AdamW against a hand-written PyTorch-formula reference (bias correction, decoupled
 * decay, clipping, warmup/decay schedule), split vs fused layouts, resume, and a tiny model that learns.
 */
import { describe, expect, it } from "vitest";
import { Graph, type Tensor } from "../src/engine/graph.js";
import * as op from "../src/engine/ops.js";
import { AdamWArena } from "../src/engine/adamw-kernel.js";
import { adamwUpdate, Trainer } from "../src/engine/optim.js";
import { linearWarmupDecay } from "../src/engine/schedule.js";
import { f32, i64 } from "../src/engine/session.js";
import type { NamedTensors } from "../src/engine/tensors.js";
import { createRng } from "../src/util/rng.js";

/** loss = ½·Σ(w − t)² + ½·Σ(b − u)² → grads w − t and b − u. */
function quadratic(): { g: Graph; loss: Tensor; params: Tensor[] } {
  const g = new Graph();
  const w = g.input("w", "float32", [3]);
  const b = g.input("head.bias", "float32", [2]);
  const t = g.input("t", "float32", [3]);
  const u = g.input("u", "float32", [2]);
  const dw = op.sub(w, t);
  const db = op.sub(b, u);
  const loss = op.mul(op.add(op.reduceSum(op.mul(dw, dw)), op.reduceSum(op.mul(db, db))), 0.5);
  return { g, loss, params: [w, b] };
}

/** PyTorch AdamW (torch.optim.AdamW + clip_grad_norm_) written out in float64. */
function referenceAdamW(p0: Record<string, number[]>, target: Record<string, number[]>, lrs: number[], o: { wd: number; maxNorm: number; decays: Record<string, boolean> }) {
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  const p = structuredClone(p0);
  const m: Record<string, number[]> = {};
  const v: Record<string, number[]> = {};
  for (const k of Object.keys(p)) { m[k] = p[k]!.map(() => 0); v[k] = p[k]!.map(() => 0); }
  const losses: number[] = [];
  lrs.forEach((lr, step) => {
    const t = step + 1;
    const g: Record<string, number[]> = {};
    let sq = 0;
    let loss = 0;
    for (const k of Object.keys(p)) {
      g[k] = p[k]!.map((x, i) => x - target[k]![i]!);
      for (const x of g[k]!) { sq += x * x; loss += 0.5 * x * x; }
    }
    losses.push(loss);
    const norm = Math.sqrt(sq);
    const coef = Math.min(1, o.maxNorm / (norm + 1e-6));
    for (const k of Object.keys(p)) {
      for (let i = 0; i < p[k]!.length; i++) {
        const gi = g[k]![i]! * coef;
        if (o.decays[k]) p[k]![i]! *= 1 - lr * o.wd;
        m[k]![i] = b1 * m[k]![i]! + (1 - b1) * gi;
        v[k]![i] = b2 * v[k]![i]! + (1 - b2) * gi * gi;
        const denom = Math.sqrt(v[k]![i]!) / Math.sqrt(1 - b2 ** t) + eps;
        p[k]![i]! -= (lr / (1 - b1 ** t)) * (m[k]![i]! / denom);
      }
    }
  });
  return { p, m, v, losses };
}

const named = (o: Record<string, number[]>): NamedTensors => new Map(Object.entries(o).map(([k, v]) => [k, { shape: [v.length], data: Float32Array.from(v) }]));

describe("linearWarmupDecay", () => {
  it("matches HF get_linear_schedule_with_warmup", () => {
    const lr = linearWarmupDecay({ peakLr: 1e-3, warmupSteps: 4, totalSteps: 10 });
    const want = [0, 0.25, 0.5, 0.75, 1, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6, 0, 0].map((x) => x * 1e-3);
    want.forEach((w, s) => expect(lr(s)).toBeCloseTo(w, 12));
  });
});

describe("Trainer AdamW step", () => {
  const p0 = { w: [0.5, -1.5, 2.0], "head.bias": [0.3, -0.2] };
  const target = { w: [1, 1, -1], "head.bias": [0, 0.5] };
  const feeds = { t: f32(target.w, [3]), u: f32(target["head.bias"], [2]) };
  const sched = linearWarmupDecay({ peakLr: 0.1, warmupSteps: 2, totalSteps: 6 });
  const lrs = [0, 1, 2, 3, 4].map(sched);

  for (const mode of ["split", "fused"] as const) {
    for (const maxNorm of [0.5, 0]) {
      it(`${mode}: matches the PyTorch formulas for 5 steps (decay on w only, clipping ${maxNorm ? "on" : "off"})`, async () => {
        const { g, loss, params } = quadratic();
        const tr = await Trainer.create({ graph: g, loss, params, initial: named(p0), mode, adamw: { weightDecay: 0.1, maxGradNorm: maxNorm } });
        const ref = referenceAdamW(p0, target, lrs, { wd: 0.1, maxNorm: maxNorm || Infinity, decays: { w: true, "head.bias": false } });
        for (let s = 0; s < lrs.length; s++) {
          const r = await tr.step(feeds, lrs[s]!);
          expect(r.loss).toBeCloseTo(ref.losses[s]!, 5);
        }
        expect(tr.stepCount).toBe(5);
        const got = tr.parameters();
        for (const k of Object.keys(p0)) {
          Array.from(got.get(k)!.data).forEach((x, i) => expect(x).toBeCloseTo(ref.p[k as keyof typeof p0][i]!, 5));
        }
        const st = tr.optimizerState();
        Array.from(st.tensors.get("w.exp_avg_sq")!.data).forEach((x, i) => expect(x).toBeCloseTo(ref.v.w![i]!, 6));
        // Clipping changes the trajectory: the test would fail if the coefficient were ignored.
        if (maxNorm) {
          const unclipped = referenceAdamW(p0, target, lrs, { wd: 0.1, maxNorm: Infinity, decays: { w: true, "head.bias": false } });
          expect(Math.abs(unclipped.p.w![0]! - ref.p.w![0]!)).toBeGreaterThan(1e-4);
        }
        await tr.dispose();
      });
    }
  }

  for (const mode of ["split", "fused"] as const) {
    it(`${mode}: per-step weight decay / clipping overrides take effect`, async () => {
      const { g, loss, params } = quadratic();
      const tr = await Trainer.create({ graph: g, loss, params, initial: named(p0), mode, adamw: { weightDecay: 0, maxGradNorm: 0 } });
      for (const lr of lrs) await tr.step(feeds, lr, { weightDecay: 0.1, maxGradNorm: 0.5 });
      const ref = referenceAdamW(p0, target, lrs, { wd: 0.1, maxNorm: 0.5, decays: { w: true, "head.bias": false } });
      Array.from(tr.parameters().get("w")!.data).forEach((x, i) => expect(x).toBeCloseTo(ref.p.w![i]!, 5));
      await tr.dispose();
    });
  }

  it("resumes exactly from optimizerState + parameters", async () => {
    const a = quadratic();
    const full = await Trainer.create({ graph: a.g, loss: a.loss, params: a.params, initial: named(p0), adamw: { maxGradNorm: 1 } });
    for (const lr of lrs) await full.step(feeds, lr);
    const b = quadratic();
    const first = await Trainer.create({ graph: b.g, loss: b.loss, params: b.params, initial: named(p0), adamw: { maxGradNorm: 1 } });
    for (const lr of lrs.slice(0, 2)) await first.step(feeds, lr);
    const copy = (m: NamedTensors): NamedTensors => new Map([...m].map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data) }]));
    const state = first.optimizerState();
    const saved = { step: state.step, tensors: copy(state.tensors) };
    const params = copy(first.parameters());
    const c = quadratic();
    const resumed = await Trainer.create({ graph: c.g, loss: c.loss, params: c.params, initial: named({ w: [0, 0, 0], "head.bias": [0, 0] }), adamw: { maxGradNorm: 1 } });
    resumed.loadParameters(params);
    resumed.loadOptimizerState(saved);
    for (const lr of lrs.slice(2)) await resumed.step(feeds, lr);
    expect(Array.from(resumed.parameters().get("w")!.data)).toEqual(Array.from(full.parameters().get("w")!.data));
    expect(resumed.stepCount).toBe(5);
    for (const t of [full, first, resumed]) await t.dispose();
  });

  it("rejects a param without an initial value, naming it", async () => {
    const { g, loss, params } = quadratic();
    await expect(Trainer.create({ graph: g, loss, params, initial: named({ w: [1, 2, 3] }) })).rejects.toThrow(/head\.bias/);
  });
});

describe("WebAssembly SIMD AdamW kernel", () => {
  it("matches the float64 JS update on odd sizes (padding lanes included) and leaves neighbours alone", () => {
    const sizes = [1, 7, 16, 1001];
    const arena = AdamWArena.create(sizes)!;
    expect(arena).toBeDefined();
    const rng = createRng(5);
    const ref = sizes.map((n, i) => {
      const r = { p: new Float32Array(n), g: new Float32Array(n), m: new Float32Array(n), v: new Float32Array(n) };
      for (let k = 0; k < n; k++) {
        const vals = [rng.next() - 0.5, rng.next() - 0.5, 0.1 * (rng.next() - 0.5), 0.01 * rng.next()];
        (["p", "g", "m", "v"] as const).forEach((key, j) => { r[key][k] = vals[j]!; arena.slots[i]![key][k] = vals[j]!; });
      }
      return r;
    });
    const sc = { beta1: 0.9, beta2: 0.999, clip: 0.7, decay: 0.999, stepSize: 0.01, epsHat: 1e-8 };
    // Update only slots 1 and 3: slots 0 and 2 must not change.
    const before0 = Float32Array.from(arena.slots[0]!.p);
    const before2 = Float32Array.from(arena.slots[2]!.m);
    for (const i of [1, 3]) {
      arena.update(i, sc);
      adamwUpdate(ref[i]!.p, ref[i]!.g, ref[i]!.m, ref[i]!.v, sc);
      for (const key of ["p", "m", "v"] as const) {
        ref[i]![key].forEach((x, k) => expect(Math.abs(arena.slots[i]![key][k]! - x)).toBeLessThan(1e-6));
      }
    }
    expect(Array.from(arena.slots[0]!.p)).toEqual(Array.from(before0));
    expect(Array.from(arena.slots[2]!.m)).toEqual(Array.from(before2));
  });
});

describe("a tiny attention classifier trained with the engine", () => {
  it("drives the loss near zero on a small synthetic set (with dropout)", async () => {
    // Task: a sequence of 4 tokens from a vocab of 6; the label is the token at the position marked by token 5.
    const V = 6, S = 4, D = 16, C = 6, N = 32;
    const rng = createRng(3);
    const idsArr = new BigInt64Array(N * S);
    const labels = new BigInt64Array(N);
    for (let n = 0; n < N; n++) {
      const mark = rng.int(S - 1);
      for (let s = 0; s < S; s++) idsArr[n * S + s] = BigInt(rng.int(5));
      idsArr[n * S + mark] = 5n;
      labels[n] = idsArr[n * S + mark + 1]!;
    }
    const g = new Graph();
    const ids = g.input("ids", "int64", ["batch", S]);
    const y = g.input("labels", "int64", ["batch"]);
    const shapes: Record<string, number[]> = { emb: [V, D], pos: [S, D], wq: [D, D], wk: [D, D], wv: [D, D], "ln.weight": [D], "ln.bias": [D], "out.weight": [C, D * S], "out.bias": [C] };
    const P = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, g.input(k, "float32", s)]));
    let h = op.add(op.gather(P.emb!, ids, 0), P.pos!);
    const att = op.softmax(op.div(op.matmul(op.matmul(h, P.wq!), op.transposeLast2(op.matmul(h, P.wk!))), Math.sqrt(D)));
    h = op.layerNorm(op.add(h, op.matmul(att, op.matmul(h, P.wv!))), P["ln.weight"]!, P["ln.bias"], { epsilon: 1e-12 });
    h = op.dropout(op.gelu(h), 0.1, true);
    const logits = op.linear(op.reshape(h, [0, -1]), P["out.weight"]!, P["out.bias"]);
    const loss = op.softmaxCrossEntropy(logits, y);
    const init: NamedTensors = new Map(Object.entries(shapes).map(([k, s]) => {
      const n = s.reduce((a, b) => a * b, 1);
      const data = k === "ln.weight" ? new Float32Array(n).fill(1) : k.endsWith("bias") ? new Float32Array(n) : Float32Array.from({ length: n }, () => (rng.next() - 0.5) * 0.6);
      return [k, { shape: s, data }];
    }));
    const tr = await Trainer.create({ graph: g, loss, params: Object.values(P), initial: init, adamw: { weightDecay: 0.01, maxGradNorm: 1 } });
    const lr = linearWarmupDecay({ peakLr: 0.02, warmupSteps: 10, totalSteps: 400 });
    const feeds = { ids: i64(idsArr, [N, S]), labels: i64(labels, [N]) };
    let first = 0;
    let last = 0;
    for (let s = 0; s < 300; s++) {
      const r = await tr.step(feeds, lr(s));
      if (s === 0) first = r.loss;
      last = r.loss;
    }
    expect(first).toBeGreaterThan(1);
    expect(last).toBeLessThan(0.1);
    await tr.dispose();
  });
});
