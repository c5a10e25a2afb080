import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { BucketScheme } from "../src/data/buckets.js";
import { buildTrace, readPredictions, simulatePolicy, syntheticPredictions, validateProfile, type SimProfile } from "../src/simulate/index.js";
import { tempDir } from "./helpers/tmp.js";

const scheme: BucketScheme = { kind: "uniform", edges: [16, 32, 48, 64, 80, 96, 112, 128] };
const profile: SimProfile = {
  model: { name: "toy", layers: 1, heads: 1, kvHeads: 1, headDim: 1, dtypeBytes: 1, weightBytes: 1000, maxSeqLen: 160 },
  gpu: { name: "toy", memoryBytes: 1000 + 2 * 400, hbmBytesPerS: 1e6, peakFlops: 1e9 },
  eff: { memUtil: 1, bwEfficiency: 1, flopsEfficiency: 1, iterOverheadS: 0 },
};
validateProfile(profile);

describe("simulate with reserveTokens", () => {
  const prompt = Array.from({ length: 40 }, () => 4);
  const output = Array.from({ length: 40 }, (_, i) => 3 + (i % 5));
  const trace = buildTrace({ prompt, output, files: ["t"] }, 160);

  it("S³ reserves prompt + reserveTokens instead of the bucket's upper edge", () => {
    const bucketOnly = syntheticPredictions("oracle", trace, scheme, 0); // every answer in bucket 0 → reserves 4 + 16
    const withReserve = { ...bucketOnly, reserve: Float64Array.from(output, (o) => o) };
    const a = simulatePolicy("s3", trace, bucketOnly, scheme, profile);
    const b = simulatePolicy("s3", trace, withReserve, scheme, profile);
    // Tighter reservations (≤ 11 tokens instead of 20) fit more sequences at once: higher peak batch.
    expect(b.metrics.preemptions).toBe(0);
    expect(b.metrics.peak_memory_reserved_fraction).toBeLessThanOrEqual(1);
    expect(b.metrics.throughput_tokens_per_s).toBeGreaterThan(a.metrics.throughput_tokens_per_s);
  });

  it("a reservation that is too small is preempted and grown (the run finishes)", () => {
    const pred = { ...syntheticPredictions("oracle", trace, scheme, 0), reserve: new Float64Array(40).fill(1) };
    const r = simulatePolicy("s3", trace, pred, scheme, profile);
    expect(r.metrics.preemptions).toBeGreaterThan(0);
    expect(r.latency.length).toBe(40);
  });

  it("a sequence that outgrows reserveTokens doubles its output reservation: ≤ ⌈log2(output / reserve)⌉ preemptions", () => {
    // One request, prompt 4, true output 100, reserveTokens 10: reservations 10 → 20 → 40 → 80 → 160 output tokens
    // (capped at the max sequence length), 4 preemptions; growing bucket by bucket (16 tokens) would take 7.
    const one = buildTrace({ prompt: [4], output: [100], files: ["t"] }, 160);
    const pred = { ...syntheticPredictions("oracle", one, scheme, 0), reserve: Float64Array.of(10) };
    const r = simulatePolicy("s3", one, pred, scheme, profile);
    expect(r.metrics.preemptions).toBe(Math.ceil(Math.log2(100 / 10)));
    // Recomputed work: prompt + generated tokens at each preemption (4 + 10, 4 + 20, 4 + 40, 4 + 80).
    expect(r.metrics.recomputed_tokens).toBe(14 + 24 + 44 + 84);
    // Without reserveTokens the S³ supervisor still grows bucket by bucket (its bucket semantics are unchanged).
    const bucketOnly = simulatePolicy("s3", one, { ...pred, bucket: Int32Array.of(0), reserve: undefined }, scheme, profile);
    expect(bucketOnly.metrics.preemptions).toBe(6); // 16 → 32 → … → 112 output tokens fit 100
  });

  it("reads reserveTokens from a predictions file (all or none)", async () => {
    const dir = tempDir();
    const file = join(dir, "p.jsonl");
    const line = (i: number, extra: object) => JSON.stringify({ index: i, bucket: 0, upperBound: 16, expectedTokens: 5, ...extra });
    writeFileSync(file, [line(0, { reserveTokens: 7.5 }), line(1, { reserveTokens: 300 })].join("\n") + "\n");
    const p = await readPredictions(file, 2, scheme);
    expect(Array.from(p.reserve!)).toEqual([7.5, 300]);
    writeFileSync(file, [line(0, {}), line(1, {})].join("\n") + "\n");
    expect((await readPredictions(file, 2, scheme)).reserve).toBeUndefined();
    writeFileSync(file, [line(0, { reserveTokens: 7 }), line(1, {})].join("\n") + "\n");
    await expect(readPredictions(file, 2, scheme)).rejects.toThrow(/record 1, field 'reserveTokens'/);
    writeFileSync(file, [line(0, { reserveTokens: -1 }), line(1, {})].join("\n") + "\n");
    await expect(readPredictions(file, 2, scheme)).rejects.toThrow(/field 'reserveTokens': expected a finite number >= 0/);
  });
});
