import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bucketMidpoint, uniformBuckets } from "../src/data/buckets.js";
import { normalQuantile } from "../src/model/decode.js";
import { DistilBertPredictor } from "../src/predictor/distilbert-predictor.js";
import { LengthPredictor } from "../src/predictor/length-predictor.js";
import { loadPredictor } from "../src/predictor/load.js";
import type { Prediction, Predictor } from "../src/model/prediction.js";
import { ID, referenceOutputs, writeTinyModel } from "./helpers/predictor-fixtures.js";
import { tempDir } from "./helpers/tmp.js";

const root = tempDir("lenpred-predictor-");
const scheme = uniformBuckets(512, 8); // bucket size 64, like the S³ reference setup
const cls = writeTinyModel(join(root, "cls"), scheme, 8, { maxSeqLen: 8 });
const ids = (words: string) => [ID["[CLS]"]!, ...words.split(" ").map((w) => ID[w]!), ID["[SEP]"]!];

const softmax = (x: number[]) => {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
};

const opened: LengthPredictor[] = [];
afterAll(async () => { for (const p of opened) await p.dispose(); });
async function open(dir: string, opts = {}): Promise<LengthPredictor> {
  const p = await LengthPredictor.load(dir, opts);
  opened.push(p);
  return p;
}

describe("LengthPredictor over a distilbert model directory (ONNX)", () => {
  it("predicts with the reference semantics: argmax bucket, (bucket + 1) × 64, probability-weighted midpoints", async () => {
    const p = await open(cls.dir);
    const pred = await p.predict("Write a POEM about the sea");
    const probs = softmax(referenceOutputs(cls, ids("write a poem about the sea")));
    const bucket = probs.indexOf(Math.max(...probs));
    expect(pred.bucket).toBe(bucket);
    expect(pred.upperBound).toBe((bucket + 1) * 64);
    pred.probabilities!.forEach((q, i) => expect(q).toBeCloseTo(probs[i]!, 5));
    expect(pred.expectedTokens).toBeCloseTo(probs.reduce((s, q, i) => s + q * bucketMidpoint(scheme, i), 0), 3);
    expect(await p.predictLength("Write a POEM about the sea")).toBe((bucket + 1) * 64);
  });

  it("uses the recorded per-bucket mean lengths for expectedTokens, and rejects malformed ones", async () => {
    const means = [40, 190, 300, 450, 600, 700, 850, 1000];
    const m = writeTinyModel(join(root, "means"), scheme, 8, { bucketMeans: means });
    const p = await open(m.dir);
    const probs = softmax(referenceOutputs(m, ids("write a poem")));
    expect((await p.predict("write a poem")).expectedTokens).toBeCloseTo(probs.reduce((s, q, i) => s + q * means[i]!, 0), 3);
    const bad = writeTinyModel(join(root, "badmeans"), scheme, 8, { bucketMeans: [1, 2] });
    await expect(LengthPredictor.load(bad.dir)).rejects.toThrow(/lenpred\.json, field 'bucketMeans': expected 8 non-negative numbers/);
  });

  it("predictBatch groups by length and pads, giving the same answers in input order as one-by-one", async () => {
    const p = await open(cls.dir, { batchSize: 2, maxBatchTokens: 12 });
    const prompts = ["write", "a long detailed story about the sea", "list one word", "the essay", "?", "short poems",
      // longer than maxSeqLen 8: truncated to [CLS] + 6 tokens + [SEP]
      "write a long detailed story about the sea and the sea"];
    const batch = await p.predictBatch(prompts);
    expect(batch).toHaveLength(prompts.length);
    for (const [i, prompt] of prompts.entries()) {
      const single = await p.predict(prompt);
      expect(batch[i]!.bucket).toBe(single.bucket);
      expect(batch[i]!.expectedTokens).toBeCloseTo(single.expectedTokens, 4);
    }
    // The truncated prompt sees exactly its first 6 content tokens.
    const trunc = softmax(referenceOutputs(cls, ids("write a long detailed story about")));
    batch[6]!.probabilities!.forEach((q, i) => expect(q).toBeCloseTo(trunc[i]!, 5));
    // WordPiece continuation: "poems" = poem ##s.
    const poems = softmax(referenceOutputs(cls, [ID["[CLS]"]!, ID.short!, ID.poem!, ID["##s"]!, ID["[SEP]"]!]));
    batch[5]!.probabilities!.forEach((q, i) => expect(q).toBeCloseTo(poems[i]!, 5));
  });

  it("quantile mode reserves the smallest bucket whose cumulative probability reaches q", async () => {
    const p = await open(cls.dir);
    const prompt = "a detailed essay";
    const probs = softmax(referenceOutputs(cls, ids(prompt)));
    for (const q of [0.1, 0.5, 0.9, 0.99]) {
      let c = 0, want = probs.length - 1;
      for (let i = 0; i < probs.length; i++) { c += probs[i]!; if (c >= q) { want = i; break; } }
      const got = await p.predict(prompt, { quantile: q });
      expect(got.bucket).toBe(want);
      expect(got.upperBound).toBe((want + 1) * 64);
    }
    const conservative = await open(cls.dir, { quantile: 0.99 });
    expect(await conservative.predictLength(prompt)).toBeGreaterThanOrEqual(await p.predictLength(prompt, { quantile: 0.5 }));
    await expect(p.predict(prompt, { quantile: 1.5 })).rejects.toThrow(/quantile must be in \(0, 1\)/);
  });

  it("decodes a regression head (log length) and its quantiles from the recorded residual std", async () => {
    const reg = writeTinyModel(join(root, "reg"), scheme, 1, { head: "regression", residualStd: 0.5 }, "reg");
    const p = await open(reg.dir);
    const mu = referenceOutputs(reg, ids("write a poem"))[0]!;
    const pred = await p.predict("write a poem");
    expect(pred.expectedTokens).toBeCloseTo(Math.max(0, Math.expm1(mu)), 3);
    expect(pred.probabilities).toBeUndefined();
    const q90 = await p.predict("write a poem", { quantile: 0.9 });
    const tokens90 = Math.expm1(mu + normalQuantile(0.9) * 0.5);
    expect(q90.bucket).toBe(Math.min(7, Math.floor(Math.max(0, tokens90) / 64)));
  });

  it("decodes a quantile head: median for the point estimate, interpolated levels in quantile mode", async () => {
    const qm = writeTinyModel(join(root, "quant"), scheme, 3, { head: "quantile", quantiles: [0.1, 0.5, 0.9] }, "quant");
    const p = await open(qm.dir);
    const out = referenceOutputs(qm, ids("list one word")).sort((a, b) => a - b);
    const pred = await p.predict("list one word");
    expect(pred.expectedTokens).toBeCloseTo(Math.max(0, Math.expm1(out[1]!)), 3);
    const q7 = await p.predict("list one word", { quantile: 0.7 });
    const t7 = Math.expm1((out[1]! + out[2]!) / 2);
    expect(q7.bucket).toBe(Math.min(7, Math.floor(Math.max(0, t7) / 64)));
  });

  it("is what loadPredictor returns for kind distilbert", async () => {
    const p = (await loadPredictor(cls.dir)) as DistilBertPredictor;
    expect(p.name).toBe("distilbert");
    expect(p.buckets).toEqual(scheme);
    expect((await p.predict("write a poem")).bucket).toBe((await (await open(cls.dir)).predict("write a poem")).bucket);
    await p.dispose();
  });

  it("names the missing file when a model directory is incomplete", async () => {
    const broken = writeTinyModel(join(root, "broken"), scheme, 8);
    rmSync(join(broken.dir, "tokenizer.json"));
    await expect(LengthPredictor.load(broken.dir)).rejects.toThrow(/broken\/tokenizer\.json: model directory has no tokenizer\.json/);
    const noOnnx = writeTinyModel(join(root, "noonnx"), scheme, 8);
    rmSync(join(noOnnx.dir, "model.onnx"));
    await expect(LengthPredictor.load(noOnnx.dir)).rejects.toThrow(/onnx\/model\.onnx: model directory has no onnx\/model\.onnx \(nor model\.onnx\)/);
    await expect(LengthPredictor.load(join(root, "nothing"))).rejects.toThrow(/not a lenpred model directory/);
  });
});

describe("LengthPredictor over other predictors", () => {
  const fixed: Predictor = {
    name: "fixed",
    buckets: scheme,
    async predict(prompt) { return (await this.predictBatch([prompt]))[0]!; },
    async predictBatch(prompts): Promise<Prediction[]> {
      return prompts.map(() => ({ bucket: 1, upperBound: 128, expectedTokens: 100, probabilities: [0.1, 0.5, 0.1, 0.1, 0.1, 0.05, 0.05, 0] }));
    },
  };
  it("applies quantile mode on the probabilities any predictor gives", async () => {
    const p = LengthPredictor.from(fixed);
    expect(await p.predictLength("x")).toBe(128);
    expect((await p.predict("x", { quantile: 0.75 })).bucket).toBe(3); // 0.1+0.5+0.1+0.1 = 0.8 ≥ 0.75
    expect(await LengthPredictor.from(fixed, { quantile: 0.95 }).predictLength("x")).toBe(384); // cumulative 0.95 at bucket 5
  });
  it("refuses quantile mode for a predictor without probabilities", async () => {
    const point: Predictor = { ...fixed, async predictBatch(ps) { return ps.map(() => ({ bucket: 0, upperBound: 64, expectedTokens: 10 })); } };
    await expect(LengthPredictor.from(point).predict("x", { quantile: 0.9 })).rejects.toThrow(/needs bucket probabilities/);
  });
});
