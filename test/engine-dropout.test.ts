/**
 * Counter-based dropout (src/engine/random.ts): the in-graph uint32 hash against its plain-JS reference,
 * mask statistics, dependence on (seed, site) only, and the backward against finite differences.
 */
import { describe, expect, it } from "vitest";
import { grad } from "../src/engine/autodiff.js";
import { Graph } from "../src/engine/graph.js";
import { gradCheck, randomInput } from "../src/engine/gradcheck.js";
import * as op from "../src/engine/ops.js";
import { dropoutMaskHost, keyedDropout, lowbias32, stepSeed } from "../src/engine/random.js";
import { f32, i64, Session } from "../src/engine/session.js";

const N = 200_000;

/** One session computing y = keyedDropout(x) at sites 0 and 1 and dL/dx for L = sum(y0 · r). */
async function dropSession(ratio: number, shape: number[]) {
  const g = new Graph();
  const x = g.input("x", "float32", shape);
  const r = g.input("r", "float32", shape);
  const seed = g.input("seed", "int64", []);
  const y0 = keyedDropout(x, ratio, seed, 0);
  const y1 = keyedDropout(x, ratio, seed, 1);
  const [gx] = grad(op.reduceSum(op.mul(y0, r)), [x]);
  const s = await Session.create(g.toOnnx({ outputs: { y0, y1, gx: gx! } }));
  const n = shape.reduce((a, b) => a * b, 1);
  const run = async (seedValue: number, xs = new Float32Array(n).fill(1), rs = new Float32Array(n).fill(1)) => {
    const o = await s.run({ x: f32(xs, shape), r: f32(rs, shape), seed: i64([seedValue], []) });
    return { y0: o.y0!.data as Float32Array, y1: o.y1!.data as Float32Array, gx: o.gx!.data as Float32Array };
  };
  return { s, run };
}

const keptOf = (y: Float32Array): Uint8Array => Uint8Array.from(y, (v) => (v !== 0 ? 1 : 0));
const agreement = (a: Uint8Array, b: Uint8Array): number => a.reduce((acc, v, i) => acc + (v === b[i] ? 1 : 0), 0) / a.length;

describe("lowbias32 / stepSeed (host side)", () => {
  it("matches a BigInt transcription of Wellons' lowbias32 and is a bijection on a sample", () => {
    // Wellons' C: x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16 (uint32).
    const ref = (x: number): number => {
      let v = BigInt(x);
      const m = (1n << 32n) - 1n;
      v ^= v >> 16n; v = (v * 0x7feb352dn) & m; v ^= v >> 15n; v = (v * 0x846ca68bn) & m; v ^= v >> 16n;
      return Number(v);
    };
    for (const x of [0, 1, 2, 0xdeadbeef, 0xffffffff, 123456789]) expect(lowbias32(x)).toBe(ref(x));
    const seen = new Set<number>();
    for (let i = 0; i < 50_000; i++) seen.add(lowbias32(i));
    expect(seen.size).toBe(50_000);
  });

  it("stepSeed differs across steps and seeds and is stable", () => {
    const a = new Set<number>();
    for (let s = 0; s < 20; s++) for (let t = 0; t < 50; t++) a.add(stepSeed(s, t));
    expect(a.size).toBe(1000);
    expect(stepSeed(42, 7)).toBe(stepSeed(42, 7));
    expect(stepSeed(0.5, 0)).not.toBe(stepSeed(0, 0));
    expect(stepSeed(2 ** 40, 0)).not.toBe(stepSeed(0, 0));
    expect(stepSeed(1, 2 ** 40)).not.toBe(stepSeed(1, 0));
    expect(() => stepSeed(1, -1)).toThrow(/step/);
    expect(() => stepSeed(Number.NaN, 0)).toThrow(/seed/);
  });
});

describe("keyedDropout", () => {
  it("equals the host reference mask bit for bit, scales by 1/(1-p), and keeps ≈ 1-p", async () => {
    const ratio = 0.1;
    const { s, run } = await dropSession(ratio, [50, 40, 100]);
    const seed = stepSeed(42, 3);
    const xs = Float32Array.from({ length: N }, (_, i) => 1 + (i % 97) / 10);
    const out = await run(seed, xs);
    for (const [site, y] of [[0, out.y0], [1, out.y1]] as const) {
      const ref = dropoutMaskHost(seed, site, N, ratio);
      let kept = 0;
      let mismatches = 0;
      for (let i = 0; i < N; i++) {
        if (y[i] !== (ref[i] ? Math.fround(xs[i]! * Math.fround(1 / 0.9)) : 0)) mismatches++;
        kept += ref[i]!;
      }
      expect(mismatches).toBe(0);
      // Binomial sd at n = 2e5, p = .9 is 0.00067: 5 sd.
      expect(Math.abs(kept / N - 0.9)).toBeLessThan(0.0034);
    }
    await s.dispose();
  });

  it("is a pure function of (seed, site): same seed same mask (also in a new session), other seed or site differs", async () => {
    const ratio = 0.3;
    const a = await dropSession(ratio, [N]);
    const b = await dropSession(ratio, [N]);
    const m1 = await a.run(1234);
    const m1again = await a.run(1234);
    const m1other = await b.run(1234);
    const m2 = await a.run(1235);
    expect(m1again.y0).toEqual(m1.y0);
    expect(m1other.y0).toEqual(m1.y0);
    expect(m1other.y1).toEqual(m1.y1);
    // Independent masks with keep q = .7 agree on q² + (1-q)² = 0.58 of the elements.
    for (const [u, v] of [[m1.y0, m2.y0], [m1.y0, m1.y1], [m2.y0, m2.y1]] as const) {
      expect(Math.abs(agreement(keptOf(u), keptOf(v)) - 0.58)).toBeLessThan(0.01);
    }
    await a.s.dispose();
    await b.s.dispose();
  });

  it("has no visible structure: neighbours, rows and bit patterns behave like independent draws", async () => {
    const ratio = 0.5;
    const { s, run } = await dropSession(ratio, [N]);
    const kept = keptOf((await run(stepSeed(7, 0))).y0);
    // Adjacent elements and elements 768 apart (one hidden row of DistilBERT-base) agree half the time.
    for (const lag of [1, 2, 768]) {
      const a = kept.subarray(0, N - lag);
      const b = kept.subarray(lag);
      expect(Math.abs(agreement(a, b) - 0.5)).toBeLessThan(0.008);
    }
    // Consecutive seeds (consecutive steps) give unrelated masks.
    const next = keptOf((await run(stepSeed(7, 1))).y0);
    expect(Math.abs(agreement(kept, next) - 0.5)).toBeLessThan(0.008);
    // Frequencies of 4-element patterns are uniform (chi-square, 15 dof; 99.9% quantile 37.7).
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i + 4 <= N; i += 4) counts[kept[i]! * 8 + kept[i + 1]! * 4 + kept[i + 2]! * 2 + kept[i + 3]!]! += 1;
    const e = N / 4 / 16;
    const chi2 = counts.reduce((acc, c) => acc + (c - e) ** 2 / e, 0);
    expect(chi2).toBeLessThan(37.7);
    await s.dispose();
  });

  it("backward: dL/dx = dL/dy · mask / (1-p) with the forward's mask, and matches finite differences", async () => {
    const ratio = 0.25;
    const { s, run } = await dropSession(ratio, [8, 25]);
    const rs = Float32Array.from({ length: 200 }, (_, i) => Math.cos(i));
    const out = await run(99, new Float32Array(200).fill(2), rs);
    const ref = dropoutMaskHost(99, 0, 200, ratio);
    for (let i = 0; i < 200; i++) expect(out.gx[i]).toBeCloseTo(ref[i] ? rs[i]! / 0.75 : 0, 5);
    await s.dispose();

    const r = await gradCheck(([x, seed]) => op.mul(keyedDropout(op.tanh(x!), 0.4, seed!, 3), x!), [
      randomInput("x", [6, 7]),
      { name: "seed", dtype: "int64", shape: [], data: BigInt64Array.from([12345n]) },
    ]);
    expect(r.maxError).toBeLessThan(1e-6);
    // The mask really is in play: y = mask·tanh(x)·x, so dropped elements have gradient exactly 0.
    const zeros = r.analytic[0]!.filter((v) => v === 0).length;
    expect(zeros).toBeGreaterThan(5);
    expect(zeros).toBeLessThan(35);
  });

  it("ratio 0 is the identity; bad ratio, site or seed are rejected", () => {
    const g = new Graph();
    const x = g.input("x", "float32", [2]);
    const seed = g.input("seed", "int64", []);
    expect(keyedDropout(x, 0, seed, 0)).toBe(x);
    expect(() => keyedDropout(x, 1, seed, 0)).toThrow(/ratio/);
    expect(() => keyedDropout(x, 0.1, seed, -1)).toThrow(/site/);
    expect(() => keyedDropout(x, 0.1, x, 0)).toThrow(/seed/);
  });
});
