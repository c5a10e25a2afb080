import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { uniformBuckets } from "../src/data/buckets.js";
import type { PreparedScheme } from "../src/data/records.js";
import { trainBaseline } from "../src/baselines/index.js";
import { fitLine } from "../src/baselines/linear.js";
import { distributionMedian, trainNgram, DEFAULT_TRAIN } from "../src/baselines/ngram/model.js";
import { DEFAULT_FEATURES, extractFeatures } from "../src/baselines/ngram/features.js";
import { computeMetrics } from "../src/metrics/metrics.js";
import { loadPredictor } from "../src/predictor/load.js";
import type { Prediction } from "../src/model/prediction.js";
import { runCli } from "./helpers/cli.js";
import { syntheticRecords, writePrepared } from "./helpers/prepared-fixture.js";
import { tempDir } from "./helpers/tmp.js";

const buckets = uniformBuckets(512, 4);
const scheme: PreparedScheme = { buckets, tokenizer: "test-words", specialTokens: false, label: "synthetic", template: "{instruction}" };
const train = syntheticRecords(2000, 1);
const val = syntheticRecords(400, 2);
const dir = tempDir();

// Small hash space keeps the n-gram tests fast (the default 2^18 × 64 embedding is 67 MB).
const SMALL = { ...DEFAULT_TRAIN, features: { ...DEFAULT_FEATURES, hashBits: 14 } };

async function score(kind: string) {
  const p = await trainBaseline(kind, train, scheme, SMALL);
  const preds = await p.predictBatch(val.map((r) => r.prompt));
  return { p, preds, m: computeMetrics(buckets, val.map((r) => r.output_tokens), val.map((r) => r.output_length_bucket), preds) };
}

function checkSemantics(preds: Prediction[]) {
  for (const q of preds) {
    expect(q.upperBound).toBe(buckets.edges[q.bucket]);
    expect(Number.isFinite(q.expectedTokens) && q.expectedTokens >= 0).toBe(true);
  }
}

describe("prompt-blind baselines", () => {
  it("majority predicts the most frequent training bucket with its midpoint", async () => {
    const { preds } = await score("majority");
    const counts = [0, 0, 0, 0];
    for (const r of train) counts[r.output_length_bucket]!++;
    const best = counts.indexOf(Math.max(...counts));
    expect(new Set(preds.map((q) => q.bucket))).toEqual(new Set([best]));
    expect(preds[0]!.expectedTokens).toBe((best === 0 ? 0 : buckets.edges[best - 1]!) / 2 + buckets.edges[best]! / 2);
    checkSemantics(preds);
  });

  it("median predicts the training median length and the bucket containing it", async () => {
    const { preds } = await score("median");
    const sorted = train.map((r) => r.output_tokens).sort((a, b) => a - b);
    const med = (sorted[999]! + sorted[1000]!) / 2;
    expect(preds.every((q) => q.expectedTokens === med)).toBe(true);
    expect(preds[0]!.bucket).toBe(buckets.edges.findIndex((e) => med < e));
    checkSemantics(preds);
  });

  it("linear least squares recovers an exact line", () => {
    const x = [1, 2, 3, 4, 10];
    const { intercept, slope } = fitLine(x, x.map((v) => 7 + 3 * v));
    expect(slope).toBeCloseTo(3, 12);
    expect(intercept).toBeCloseTo(7, 12);
  });
});

describe("ngram model", () => {
  it("hashes features deterministically and L2-normalises the n-gram part", () => {
    const cfg = { ...DEFAULT_FEATURES, lengthFeatures: false };
    const a = extractFeatures("Write an essay about the ocean", cfg);
    const b = extractFeatures("Write an essay about the ocean", cfg);
    expect(Array.from(a.idx)).toEqual(Array.from(b.idx));
    expect(a.idx.every((i) => i >= 0 && i < 1 << cfg.hashBits)).toBe(true);
    expect(Array.from(a.val).reduce((s, v) => s + v * v, 0)).toBeCloseTo(1, 5);
    expect(Array.from(extractFeatures("classify the ocean", cfg).idx)).not.toEqual(Array.from(a.idx));
  });

  it("takes the median of a bucket distribution by interpolating inside the bucket", () => {
    expect(distributionMedian(buckets, [0.25, 0.5, 0.25, 0])).toBeCloseTo(128 + 0.5 * 128, 9);
    expect(distributionMedian(buckets, [1, 0, 0, 0])).toBeCloseTo(64, 9);
  });

  it("learns the prompt signal: beats the median and majority baselines on every error metric", async () => {
    const ng = await score("ngram");
    const med = await score("median");
    const maj = await score("majority");
    checkSemantics(ng.preds);
    for (const q of ng.preds) expect(q.probabilities!.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 6);
    expect(ng.m.bucketAccuracy).toBeGreaterThan(maj.m.bucketAccuracy + 0.1);
    expect(ng.m.mae).toBeLessThan(0.5 * med.m.mae);
    expect(ng.m.underAllocationRate).toBeLessThan(maj.m.underAllocationRate);
    // two task families with random lengths inside each: the best achievable tau-b is about 0.42
    expect(ng.m.kendallTauB).toBeGreaterThan(0.3);
  });

  it("point estimates: regression, mean and median are all finite and differ as configured", async () => {
    const base = { ...SMALL, epochs: 2 };
    const m = trainNgram(train.slice(0, 500), scheme, base);
    const prompt = val[0]!.prompt;
    const out = (["regression", "mean", "median"] as const).map((pt) => {
      m.point = pt;
      return m.predictSync(prompt).expectedTokens;
    });
    const probs = m.predictSync(prompt).probabilities!;
    expect(out[1]).toBeCloseTo(probs.reduce((s, p, c) => s + p * (c * 128 + 64), 0), 6);
    expect(out[2]).toBeCloseTo(distributionMedian(buckets, probs), 6);
  });
});

describe("ngram hidden layer", () => {
  it("learns an interaction of two words that the linear model cannot (XOR of unigrams)", () => {
    // Long iff exactly one of the two marker words is present; bigrams/positions off, so only unigrams remain.
    const recs = Array.from({ length: 800 }, (_, i) => {
      const a = i % 2 === 1, b = (i >> 1) % 2 === 1;
      const prompt = `${a ? "alpha" : "gamma"} some filler words here ${b ? "beta" : "delta"}`;
      const out = a !== b ? 300 : 20;
      return { id: i, prompt, prompt_tokens: 6, output_tokens: out, output_length_bucket: out < 128 ? 0 : 2 };
    });
    const features = { ...DEFAULT_FEATURES, bigrams: false, lineStartWords: 0, lengthFeatures: false, hashBits: 12 };
    const fit = (hidden: number) => {
      const m = trainNgram(recs, scheme, { ...DEFAULT_TRAIN, features, hidden, epochs: 10, lr: 0.05 });
      const preds = recs.slice(0, 4).map((r) => m.predictSync(r.prompt));
      return { buckets: preds.map((q) => q.bucket), err: preds.reduce((s, q, i) => s + Math.abs(q.expectedTokens - recs[i]!.output_tokens), 0) / 4 };
    };
    const mlp = fit(16), lin = fit(0);
    expect(mlp.buckets).toEqual([0, 2, 2, 0]);
    expect(mlp.err).toBeLessThan(30);
    expect(lin.err).toBeGreaterThan(60);
  });
});

describe("ngram warm start", () => {
  it("copies the init model's weights (lr 0 leaves them unchanged) and rejects incompatible shapes", () => {
    const a = trainNgram(train.slice(0, 300), scheme, { ...SMALL, hidden: 8, epochs: 1 });
    const b = trainNgram(train.slice(300, 600), scheme, { ...SMALL, hidden: 8, epochs: 1, lr: 0, init: a });
    expect(Array.from(b.params.E!)).toEqual(Array.from(a.params.E!));
    expect(Array.from(b.params.W)).toEqual(Array.from(a.params.W));
    expect(b.params.E).not.toBe(a.params.E); // a copy, not shared
    expect(() => trainNgram(train.slice(0, 50), scheme, { ...SMALL, hidden: 4, init: a })).toThrow(/incompatible/);
  });
});

describe("model directories", () => {
  it.each(["majority", "median", "linear", "ngram"])("%s round-trips through loadPredictor with identical predictions", async (kind) => {
    const p = await trainBaseline(kind, train, scheme, SMALL);
    const modelDir = join(dir, `model-${kind}`);
    await p.save(modelDir);
    expect(JSON.parse(readFileSync(join(modelDir, "lenpred.json"), "utf8")).kind).toBe(kind);
    const loaded = await loadPredictor(modelDir);
    expect(loaded.name).toBe(kind);
    const prompts = val.slice(0, 20).map((r) => r.prompt);
    expect(await loaded.predictBatch(prompts)).toEqual(await p.predictBatch(prompts));
    expect(await loaded.predict(prompts[0]!)).toEqual((await p.predictBatch(prompts.slice(0, 1)))[0]);
  });

  it("linear ngram (--hidden 0) round-trips too", async () => {
    const p = trainNgram(train.slice(0, 300), scheme, { ...DEFAULT_TRAIN, features: { ...DEFAULT_FEATURES, hashBits: 14 }, hidden: 0 });
    const modelDir = join(dir, "model-ngram-linear");
    await p.save(modelDir);
    const loaded = await loadPredictor(modelDir);
    const prompts = val.slice(0, 10).map((r) => r.prompt);
    expect(await loaded.predictBatch(prompts)).toEqual(await p.predictBatch(prompts));
  });

  it("reports a truncated weights file by name", async () => {
    const p = await trainBaseline("ngram", train.slice(0, 100), scheme, SMALL);
    const modelDir = join(dir, "broken");
    await p.save(modelDir);
    const { writeFileSync } = await import("node:fs");
    writeFileSync(join(modelDir, "weights.f32"), new Uint8Array(12));
    await expect(loadPredictor(modelDir)).rejects.toThrow(/weights\.f32: expected \d+ float32 values/);
  });
});

describe("lenpred baseline CLI", () => {
  const data = join(dir, "prep");
  writePrepared(data, { train: train.slice(0, 600), val: val.slice(0, 100) }, buckets);

  it("trains, saves and writes predictions that lenpred eval accepts", () => {
    const out = join(dir, "ngram.val.jsonl");
    const save = join(dir, "cli-ngram");
    const r = runCli(["baseline", "--kind", "ngram", "--data", data, "--split", "val", "--epochs", "2", "--hash-bits", "14", "--point", "median", "--save", save, "--out", out]);
    expect(r.code).toBe(0);
    const lines = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines).toHaveLength(100);
    expect(lines[5].index).toBe(5);
    expect(lines[5].id).toBe(val[5]!.id);
    expect(JSON.parse(readFileSync(join(save, "lenpred.json"), "utf8")).point).toBe("median");
    const e = runCli(["eval", "--data", data, "--split", "val", "--preds", out, "--json"]);
    expect(e.code).toBe(0);
    expect(JSON.parse(e.stdout.trim().split("\n").at(-1)!).n).toBe(100);
  });

  it("--exclude-ids drops training records and --init warm-starts from a saved ngram model", () => {
    const pre = join(dir, "cli-pre");
    const r1 = runCli(["baseline", "--kind", "ngram", "--data", data, "--hash-bits", "12", "--hidden", "8", "--epochs", "1", "--exclude-ids", join(data, "train.jsonl"), "--train-split", "val", "--save", pre]);
    // every val id differs from the train ids, so nothing is excluded when training on val
    expect(r1.stderr).toMatch(/excluded 0 training records/);
    const r2 = runCli(["baseline", "--kind", "ngram", "--data", data, "--init", pre, "--epochs", "1", "--exclude-ids", join(data, "train.jsonl"), "--save", join(dir, "x")]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/no training records left after --exclude-ids/);
    const r3 = runCli(["baseline", "--kind", "ngram", "--data", data, "--init", pre, "--epochs", "1", "--save", join(dir, "cli-warm")]);
    expect(r3.code).toBe(0);
    const meta = JSON.parse(readFileSync(join(dir, "cli-warm", "lenpred.json"), "utf8"));
    expect(meta.hidden).toBe(8); // taken from the init model, not the default
    expect(meta.features.hashBits).toBe(12);
    expect(runCli(["baseline", "--kind", "ngram", "--data", data, "--init", join(dir, "model-median"), "--out", join(dir, "y.jsonl")]).stderr).toMatch(/--init needs an ngram model directory/);
  });

  it("rejects an unknown kind, bad numeric options and a missing output", () => {
    expect(runCli(["baseline", "--kind", "oracle", "--data", data, "--out", join(dir, "x.jsonl")]).stderr).toMatch(/unknown --kind 'oracle'/);
    expect(runCli(["baseline", "--kind", "ngram", "--data", data, "--epochs", "zero", "--out", join(dir, "x.jsonl")]).stderr).toMatch(/--epochs expects an integer/);
    expect(runCli(["baseline", "--kind", "median", "--data", data]).stderr).toMatch(/nothing to do/);
  });
});
