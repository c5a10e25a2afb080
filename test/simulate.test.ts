import { describe, expect, it } from "vitest";
import type { BucketScheme } from "../src/data/buckets.js";
import { bucketOf } from "../src/data/buckets.js";
import {
  ALL_POLICIES, buildProfile, buildTrace, costModel, kvBytesPerToken, kvCapacityTokens, percentile, poissonArrivals,
  simulatePolicy, syntheticPredictions, validateProfile, type PolicyName, type Predictions, type SimProfile, type StepObservation,
  type Trace,
} from "../src/simulate/index.js";
import { FifoQueue, KeyedQueue } from "../src/simulate/queue.js";
import { createRng } from "../src/util/rng.js";

/** A toy GPU: 2 bytes of KV per token, so capacity = (memory − weights) / 2 tokens exactly. */
function tinyProfile(capacityTokens: number, maxSeqLen: number): SimProfile {
  const p: SimProfile = {
    model: { name: "toy", layers: 1, heads: 1, kvHeads: 1, headDim: 1, dtypeBytes: 1, weightBytes: 1000, maxSeqLen },
    gpu: { name: "toy", memoryBytes: 1000 + 2 * capacityTokens, hbmBytesPerS: 1e6, peakFlops: 1e9 },
    eff: { memUtil: 1, bwEfficiency: 1, flopsEfficiency: 1, iterOverheadS: 0 },
  };
  validateProfile(p);
  return p;
}

const scheme: BucketScheme = { kind: "uniform", edges: [16, 32, 48, 64, 80, 96, 112, 128] };

function randomTrace(n: number, seed: number, maxSeqLen: number): Trace {
  const rng = createRng(seed);
  const prompt: number[] = [], output: number[] = [];
  for (let i = 0; i < n; i++) {
    prompt.push(1 + rng.int(40));
    // Skewed like real answers: mostly short, a tail of long ones (some above the last edge).
    output.push(rng.next() < 0.8 ? rng.int(40) : 40 + rng.int(140));
  }
  return buildTrace({ prompt, output, files: ["random"] }, maxSeqLen);
}

function sum(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s;
}

describe("profiles", () => {
  it("derives GPT-J-6B KV size and A100-80GB capacity from the model shapes", () => {
    const p = buildProfile("gpt-j-6b", "a100-80gb");
    // 2 (K and V) × 28 layers × 16 heads × 256 dims × 2 bytes.
    expect(kvBytesPerToken(p)).toBe(458_752);
    const free = 80 * 2 ** 30 * 0.9 - 6_053_381_344 * 2;
    expect(kvCapacityTokens(p)).toBe(Math.floor(free / 458_752));
    const l = buildProfile("llama-2-7b", "a100-80gb", { kvHeads: 8 });
    expect(kvBytesPerToken(l)).toBe(2 * 32 * 8 * 128 * 2);
  });
  it("rejects a profile whose KV cache cannot hold one max-length sequence", () => {
    expect(() => buildProfile("gpt-j-6b", "a100-40gb", { gpuMemoryBytes: 14e9 })).toThrow(/less than one max-length sequence/);
    expect(() => buildProfile("gpt-j-6b", "h100")).toThrow(/unknown GPU preset/);
  });
});

describe("step-time model", () => {
  it("matches a hand computation of the roofline for prefill and decode iterations", () => {
    const p = tinyProfile(1000, 64);
    // params = 1000 bytes / 1 byte; hidden = 1 layer × 1 head × 1 dim.
    const c = costModel(p);
    // Prefill of 10 tokens: bytes = 1000 + 2·10 = 1020 → 1.02e-3 s; flops = 2000·10 + 2·100 = 20200 → 2.02e-5 s.
    expect(c.iterationTime({ decodeSeqs: 0, decodeContext: 0, prefillTokens: 10, prefillSquares: 100 })).toBeCloseTo(1.02e-3, 12);
    // Decode of 3 sequences over 300 context tokens: bytes = 1000 + 2·303 = 1606; flops = 2000·3 + 4·300 = 7200.
    expect(c.iterationTime({ decodeSeqs: 3, decodeContext: 300, prefillTokens: 0, prefillSquares: 0 })).toBeCloseTo(1.606e-3, 12);
    // Compute-bound once FLOP/s are scarce: peak 1e6 → flops/1e6 dominates.
    const slow = costModel({ ...p, gpu: { ...p.gpu, peakFlops: 1e6 } });
    expect(slow.iterationTime({ decodeSeqs: 3, decodeContext: 300, prefillTokens: 0, prefillSquares: 0 })).toBeCloseTo(7200 / 1e6, 12);
  });

  it("charges one request exactly prefill + (output − 1) decode iterations", () => {
    const p = tinyProfile(1000, 64);
    const trace = buildTrace({ prompt: [10], output: [3], files: ["one"] }, 64);
    const pred = syntheticPredictions("oracle", trace, scheme, 0);
    const c = costModel(p);
    const expected = c.iterationTime({ decodeSeqs: 0, decodeContext: 0, prefillTokens: 10, prefillSquares: 100 })
      + c.iterationTime({ decodeSeqs: 1, decodeContext: 11, prefillTokens: 0, prefillSquares: 0 })
      + c.iterationTime({ decodeSeqs: 1, decodeContext: 12, prefillTokens: 0, prefillSquares: 0 });
    for (const name of ALL_POLICIES) {
      const r = simulatePolicy(name, trace, pred, scheme, p);
      expect(r.metrics.iterations, name).toBe(3);
      expect(r.latency[0], name).toBeCloseTo(expected, 12);
      expect(r.metrics.throughput_tokens_per_s, name).toBeCloseTo(3 / expected, 6);
    }
  });
});

describe("memory accounting", () => {
  const cases: { label: string; cap: number; maxLen: number; predictor: string; maxBatch?: number }[] = [
    { label: "tight memory, noisy predictions", cap: 700, maxLen: 256, predictor: "noisy:1" },
    { label: "tight memory, constant predictor (many overflows)", cap: 600, maxLen: 200, predictor: "constant:0" },
    { label: "roomy memory, oracle", cap: 20_000, maxLen: 256, predictor: "oracle" },
    { label: "batch cap", cap: 5_000, maxLen: 256, predictor: "noisy:0.5", maxBatch: 7 },
  ];
  for (const c of cases) {
    it(`never exceeds capacity, finishes every request and conserves tokens (${c.label})`, () => {
      const p = tinyProfile(c.cap, c.maxLen);
      const trace = randomTrace(400, 7, c.maxLen);
      trace.arrival = poissonArrivals(trace.n, 50, 3);
      const pred = syntheticPredictions(c.predictor, trace, scheme, 1);
      const sumP = sum(trace.prompt), sumO = sum(trace.output);
      for (const name of ALL_POLICIES) {
        let steps = 0, maxReserved = 0, maxRunning = 0;
        const bad: StepObservation[] = [];
        const r = simulatePolicy(name, trace, pred, scheme, p, {
          maxBatch: c.maxBatch,
          observe: (o) => {
            steps++;
            maxReserved = Math.max(maxReserved, o.reservedTokens);
            maxRunning = Math.max(maxRunning, o.running);
            if (o.reservedTokens > o.capacityTokens || o.usedTokens > o.reservedTokens || o.overAllocated > 0) bad.push(o);
          },
        });
        expect(bad, name).toEqual([]);
        expect(maxReserved, name).toBeGreaterThan(0);
        if (c.maxBatch) expect(maxRunning, name).toBeLessThanOrEqual(c.maxBatch);
        expect(steps, name).toBe(r.metrics.iterations);
        // Every request finished after it arrived.
        expect(r.latency.every((l) => Number.isFinite(l) && l > 0), name).toBe(true);
        // Tokens conserved: every true output token generated exactly once; prefill = prompts + recomputation.
        expect(r.metrics.generated_tokens, name).toBe(sumO);
        expect(r.metrics.output_tokens, name).toBe(sumO);
        expect(r.metrics.prefill_tokens, name).toBe(sumP + r.metrics.recomputed_tokens);
        if (name === "oracle" || name.startsWith("max-length")) expect(r.metrics.preemptions, name).toBe(0);
        expect(r.metrics.memory_utilization, name).toBeLessThanOrEqual(r.metrics.memory_reserved_fraction + 1e-12);
      }
    });
  }

  it("exercises the supervisor and paged preemption under pressure", () => {
    const p = tinyProfile(600, 200);
    const trace = randomTrace(300, 11, 200);
    const pred = syntheticPredictions("constant:0", trace, scheme, 0);
    const s3 = simulatePolicy("s3", trace, pred, scheme, p);
    const paged = simulatePolicy("paged", trace, pred, scheme, p, { blockSize: 8 });
    expect(s3.metrics.preemptions).toBeGreaterThan(0);
    expect(s3.metrics.recomputed_tokens).toBeGreaterThan(0);
    expect(paged.metrics.preemptions).toBeGreaterThan(0);
  });
});

describe("policies", () => {
  it("S³ supervisor moves an overflowing request up one bucket at a time and recomputes its KV", () => {
    const p = tinyProfile(1000, 100);
    const sch: BucketScheme = { kind: "uniform", edges: [8, 16, 32] };
    const trace = buildTrace({ prompt: [4], output: [30], files: ["one"] }, 100);
    const pred: Predictions = { bucket: Int32Array.of(0), expected: Float64Array.of(4), source: "test" };
    const r = simulatePolicy("s3", trace, pred, sch, p);
    // Reservation 4 + 8 = 12 overflows when the 9th token needs slot 13 (after 8 tokens: recompute 4 + 8);
    // 4 + 16 = 20 overflows after 16 tokens (recompute 4 + 16); bucket 2 then fits the 30 tokens.
    expect(r.metrics.preemptions).toBe(2);
    expect(r.metrics.recomputed_tokens).toBe(12 + 20);
    expect(r.metrics.generated_tokens).toBe(30);
    // The re-prefill after a preemption also emits the next token, so there is still one iteration per token.
    expect(r.metrics.iterations).toBe(30);
  });

  it("max-length runs static batches of capacity / max length that return together", () => {
    const p = tinyProfile(2 * 64, 64); // room for exactly 2 max-length sequences
    const trace = buildTrace({ prompt: [2, 2, 2, 2], output: [5, 1, 1, 2], files: ["four"] }, 64);
    const pred = syntheticPredictions("oracle", trace, scheme, 0);
    const r = simulatePolicy("max-length", trace, pred, scheme, p);
    expect(r.metrics.iterations).toBe(5 + 2);
    expect(r.metrics.padding_tokens).toBe(4 + 1);
    expect(r.metrics.max_batch_size).toBe(2);
    expect(r.latency[1]).toBe(r.latency[0]); // request 1 waits for its batch-mate
    expect(r.latency[2]).toBe(r.latency[3]);
    expect(r.latency[2]).toBeGreaterThan(r.latency[0]!);
    // Iteration-level scheduling with the same reservation lets request 2 start when request 1 ends.
    const iter = simulatePolicy("max-length-iter", trace, pred, scheme, p);
    expect(iter.metrics.makespan_s).toBeLessThan(r.metrics.makespan_s);
  });

  it("shortest-predicted-first serves requests in predicted order", () => {
    const p = tinyProfile(10_000, 256);
    const trace = randomTrace(50, 5, 256);
    const pred = syntheticPredictions("oracle", trace, scheme, 0);
    for (const name of ["s3-sjf", "paged-sjf"] as PolicyName[]) {
      const r = simulatePolicy(name, trace, pred, scheme, p, { maxBatch: 1 });
      const byFinish = Array.from(r.latency.keys()).sort((a, b) => r.latency[a]! - r.latency[b]!);
      const expected = Array.from(r.latency.keys()).sort((a, b) => trace.output[a]! - trace.output[b]! || a - b);
      expect(byFinish, name).toEqual(expected);
      // FCFS finishes in arrival order instead.
      const fcfs = simulatePolicy(name === "s3-sjf" ? "s3" : "paged", trace, pred, scheme, p, { maxBatch: 1 });
      const fcfsOrder = Array.from(fcfs.latency.keys()).sort((a, b) => fcfs.latency[a]! - fcfs.latency[b]!);
      expect(fcfsOrder).toEqual(Array.from(fcfs.latency.keys()));
    }
  });

  it("more memory per request (better predictions) means larger batches and higher throughput", () => {
    const p = tinyProfile(3000, 256);
    const trace = randomTrace(600, 2, 256);
    const oracle = syntheticPredictions("oracle", trace, scheme, 0);
    const m = (n: PolicyName) => simulatePolicy(n, trace, oracle, scheme, p).metrics;
    const ml = m("max-length-iter"), s3 = m("s3"), or = m("oracle");
    expect(s3.mean_batch_size).toBeGreaterThan(ml.mean_batch_size * 1.5);
    expect(or.mean_batch_size).toBeGreaterThanOrEqual(s3.mean_batch_size);
    expect(s3.throughput_tokens_per_s).toBeGreaterThan(ml.throughput_tokens_per_s);
  });
});

describe("inputs", () => {
  it("fits requests to the max sequence length and counts truncations", () => {
    const t = buildTrace({ prompt: [10, 100, 3], output: [0, 50, 200], files: ["x"] }, 64);
    expect(Array.from(t.prompt)).toEqual([10, 63, 3]);
    expect(Array.from(t.output)).toEqual([1, 1, 61]);
    expect(t.truncated).toBe(2);
  });

  it("synthetic predictors: oracle is exact, constant picks the majority bucket, noisy is seeded", () => {
    const trace = randomTrace(500, 3, 256);
    const o = syntheticPredictions("oracle", trace, scheme, 0);
    for (let i = 0; i < trace.n; i++) expect(o.bucket[i]).toBe(bucketOf(scheme, trace.output[i]!));
    const counts = new Map<number, number>();
    for (const b of o.bucket) counts.set(b, (counts.get(b) ?? 0) + 1);
    const majority = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0];
    expect(syntheticPredictions("constant", trace, scheme, 0).bucket.every((b) => b === majority)).toBe(true);
    const a = syntheticPredictions("noisy:0.7", trace, scheme, 4), b = syntheticPredictions("noisy:0.7", trace, scheme, 4);
    const c = syntheticPredictions("noisy:0.7", trace, scheme, 5);
    expect(Array.from(a.expected)).toEqual(Array.from(b.expected));
    expect(Array.from(a.expected)).not.toEqual(Array.from(c.expected));
    // Zero noise is the oracle.
    expect(Array.from(syntheticPredictions("noisy:0", trace, scheme, 1).bucket)).toEqual(Array.from(o.bucket));
    expect(() => syntheticPredictions("noisy:x", trace, scheme, 0)).toThrow(/sigma/);
    expect(() => syntheticPredictions("constant:8", trace, scheme, 0)).toThrow(/0\.\.7/);
    expect(() => syntheticPredictions("magic", trace, scheme, 0)).toThrow(/unknown predictor/);
  });

  it("Poisson arrivals are seeded, non-decreasing and have mean gap 1/rate", () => {
    const a = poissonArrivals(20_000, 4, 9);
    expect(Array.from(poissonArrivals(100, 4, 9))).toEqual(Array.from(a.slice(0, 100)));
    for (let i = 1; i < a.length; i++) expect(a[i]! >= a[i - 1]!).toBe(true);
    const meanGap = a[a.length - 1]! / (a.length - 1);
    expect(Math.abs(meanGap - 0.25) / 0.25).toBeLessThan(0.03);
  });

  it("percentile is nearest-rank", () => {
    const s = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(percentile(s, 0.5)).toBe(5);
    expect(percentile(s, 0.99)).toBe(10);
    expect(percentile(s, 0.1)).toBe(1);
  });
});

describe("queues", () => {
  it("unpop restores the order for FIFO and keyed queues", () => {
    const f = new FifoQueue();
    for (let i = 0; i < 10; i++) f.push(i);
    const a = [f.pop(), f.pop(), f.pop()];
    f.unpop([a[0]!, a[2]!]);
    const rest: number[] = [];
    while (f.size) rest.push(f.pop());
    expect(rest).toEqual([0, 2, 3, 4, 5, 6, 7, 8, 9]);
    const key = [5, 1, 3, 1, 9, 0];
    const k = new KeyedQueue(key);
    for (let i = 0; i < key.length; i++) k.push(i);
    const b = [k.pop(), k.pop()];
    k.unpop(b);
    const order: number[] = [];
    while (k.size) order.push(k.pop());
    expect(order).toEqual([5, 1, 3, 2, 0, 4]);
  });
});
