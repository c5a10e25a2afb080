import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bucketOf, uniformBuckets, type BucketScheme } from "../src/data/buckets.js";
import { LengthPredictor } from "../src/predictor/length-predictor.js";
import { loadPredictor } from "../src/predictor/load.js";
import type { Prediction, Predictor } from "../src/model/prediction.js";
import { writeTinyModel } from "./helpers/predictor-fixtures.js";
import { tempDir } from "./helpers/tmp.js";

const root = tempDir("lenpred-ensemble-");
const scheme = uniformBuckets(512, 8);

function ensembleDir(name: string, members: object[], buckets: BucketScheme = scheme): string {
  const dir = join(root, name);
  writeTinyModel(join(dir, "cls"), scheme, 8, {}, "a");
  writeTinyModel(join(dir, "cls2"), scheme, 8, {}, "b");
  writeTinyModel(join(dir, "reg"), scheme, 1, { head: "regression" }, "c");
  writeTinyModel(join(dir, "other"), uniformBuckets(1024, 8), 8, {}, "d");
  writeFileSync(join(dir, "lenpred.json"), JSON.stringify({ kind: "ensemble", buckets, tokenizer: "test-counting", members }));
  return dir;
}

const opened: { dispose(): Promise<void> }[] = [];
afterAll(async () => { for (const p of opened) await p.dispose(); });
async function load(dir: string): Promise<Predictor> {
  const p = await loadPredictor(dir);
  opened.push(p as unknown as { dispose(): Promise<void> });
  return p;
}

const prompts = ["write a poem about the sea", "a long detailed story", "list one word", ""];

describe("ensemble model directories", () => {
  it("averages log1p(expectedTokens) with the weights, and probabilities over the members that have them", async () => {
    const dir = ensembleDir("mixed", [{ dir: "cls", weight: 1 }, { dir: "reg", weight: 3 }, { dir: "cls2" }]);
    const ens = await load(dir);
    const members = await Promise.all(["cls", "reg", "cls2"].map((m) => load(join(dir, m))));
    const got = await ens.predictBatch(prompts);
    for (const [j, prompt] of prompts.entries()) {
      const [a, r, b] = await Promise.all(members.map((m) => m.predict(prompt))) as [Prediction, Prediction, Prediction];
      expect(a.probabilities).toBeDefined();
      expect(r.probabilities).toBeUndefined();
      const logMean = (Math.log(1 + a.expectedTokens) + 3 * Math.log(1 + r.expectedTokens) + Math.log(1 + b.expectedTokens)) / 5;
      expect(got[j]!.expectedTokens).toBeCloseTo(Math.exp(logMean) - 1, 6);
      // Probabilities: cls and cls2 have weight 1 each, renormalised over the two.
      const probs = a.probabilities!.map((p, i) => (p + b.probabilities![i]!) / 2);
      got[j]!.probabilities!.forEach((p, i) => expect(p).toBeCloseTo(probs[i]!, 6));
      expect(got[j]!.probabilities!.reduce((s, p) => s + p, 0)).toBeCloseTo(1, 9);
      const bucket = probs.indexOf(Math.max(...probs));
      expect(got[j]!.bucket).toBe(bucket);
      expect(got[j]!.upperBound).toBe(scheme.edges[bucket]);
      const single = await ens.predict(prompt); // batched vs single ONNX runs differ only by float rounding
      expect(single.bucket).toBe(got[j]!.bucket);
      expect(single.expectedTokens).toBeCloseTo(got[j]!.expectedTokens, 4);
    }
  });

  it("without probabilities, the bucket is the one holding the combined estimate; quantile mode is refused", async () => {
    const dir = ensembleDir("reg-only", [{ dir: "reg" }]);
    const ens = await load(dir);
    const reg = await load(join(dir, "reg"));
    for (const prompt of prompts) {
      const [e, r] = [await ens.predict(prompt), await reg.predict(prompt)];
      expect(e.probabilities).toBeUndefined();
      expect(e.expectedTokens).toBeCloseTo(r.expectedTokens, 6);
      expect(e.bucket).toBe(bucketOf(scheme, e.expectedTokens));
    }
    const lp = await LengthPredictor.load(dir);
    opened.push(lp);
    await expect(lp.predict("write", { quantile: 0.9 })).rejects.toThrow(/quantile mode needs bucket probabilities/);
  });

  it("LengthPredictor opens it, and quantile mode uses the averaged probabilities", async () => {
    const dir = ensembleDir("lp", [{ dir: "cls" }, { dir: "cls2" }]);
    const lp = await LengthPredictor.load(dir);
    opened.push(lp);
    const p = await lp.predict("a detailed essay");
    let c = 0;
    const q = 0.95;
    const bucket = p.probabilities!.findIndex((x) => (c += x) >= q - 1e-12);
    expect((await lp.predict("a detailed essay", { quantile: q })).bucket).toBe(bucket);
    expect(await lp.predictLength("a detailed essay")).toBe(p.upperBound);
  });

  it("rejects bad member lists with the file and field", async () => {
    await expect(loadPredictor(ensembleDir("none", []))).rejects.toThrow(/lenpred\.json, field 'members': expected a non-empty array/);
    await expect(loadPredictor(ensembleDir("escape", [{ dir: "../mixed/cls" }]))).rejects.toThrow(/field 'members\[0\]\.dir': '\.\.\/mixed\/cls' is outside the model directory/);
    await expect(loadPredictor(ensembleDir("weight", [{ dir: "cls", weight: 0 }]))).rejects.toThrow(/field 'members\[0\]\.weight': weight must be a positive number/);
    await expect(loadPredictor(ensembleDir("buckets", [{ dir: "cls" }, { dir: "other" }]))).rejects.toThrow(/field 'members\[1\]\.dir': member 'other' has buckets \[128, 256/);
    await expect(loadPredictor(ensembleDir("missing", [{ dir: "nope" }]))).rejects.toThrow(/not a lenpred model directory/);
  });
});
