/**
 * The committed default models under models/: every directory loads through `LengthPredictor.load`, predicts a
 * valid bucket upper bound, and (for kinds with bucket probabilities) a distribution that sums to 1.
 * No ../shared data needed.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LengthPredictor } from "../src/predictor/length-predictor.js";
import { readModelMeta } from "../src/model-dir/index.js";

const modelsDir = join(import.meta.dirname, "..", "models");
/** The committed defaults (a user's own models trained into models/ are not checked here). */
const dirs = ["alpaca-s3", "vicuna-7b"];

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((s, f) => {
    const st = statSync(join(dir, f));
    return s + (st.isDirectory() ? dirBytes(join(dir, f)) : st.size);
  }, 0);
}

const prompts = [
  "Write a haiku about autumn.",
  "Write a detailed essay on the causes and consequences of the French Revolution.",
  "Classify the following animal as a mammal or a reptile. Crocodile",
  "?",
  "日本語で自己紹介してください 🙂",
];

describe("committed default models", () => {
  it("ships alpaca-s3 and vicuna-7b", () => {
    for (const d of dirs) expect(existsSync(join(modelsDir, d, "lenpred.json"))).toBe(true);
  });

  for (const name of dirs) {
    describe(name, () => {
      const dir = join(modelsDir, name);

      it("is at most 25 MB and has a model card", () => {
        expect(dirBytes(dir)).toBeLessThanOrEqual(25 * 1024 * 1024);
        expect(readFileSync(join(dir, "README.md"), "utf8")).toMatch(/held-out/i);
      });

      it("predicts valid bucket upper bounds and normalised probabilities", async () => {
        const meta = await readModelMeta(dir);
        const p = await LengthPredictor.load(dir);
        try {
          expect(p.buckets.edges).toEqual(meta.buckets.edges);
          const batch = await p.predictBatch(prompts);
          for (const [i, prompt] of prompts.entries()) {
            const pred = await p.predict(prompt);
            expect(pred.bucket).toBeGreaterThanOrEqual(0);
            expect(pred.bucket).toBeLessThan(meta.buckets.edges.length);
            expect(pred.upperBound).toBe(meta.buckets.edges[pred.bucket]);
            expect(await p.predictLength(prompt)).toBe(pred.upperBound);
            expect(Number.isFinite(pred.expectedTokens) && pred.expectedTokens >= 0).toBe(true);
            expect(batch[i]!.bucket).toBe(pred.bucket);
            expect(batch[i]!.expectedTokens).toBeCloseTo(pred.expectedTokens, 3);
            if (pred.probabilities) {
              expect(pred.probabilities).toHaveLength(meta.buckets.edges.length);
              for (const q of pred.probabilities) expect(q >= 0 && q <= 1).toBe(true);
              expect(pred.probabilities.reduce((s, q) => s + q, 0)).toBeCloseTo(1, 6);
            }
          }
          // A request for a long essay must not be predicted shorter than a one-word classification.
          const [essay, cls] = [batch[1]!, batch[2]!];
          expect(essay.expectedTokens).toBeGreaterThan(cls.expectedTokens);
        } finally {
          await p.dispose();
        }
      });
    });
  }
});
