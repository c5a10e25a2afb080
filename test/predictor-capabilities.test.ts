/** Optional Predictor capabilities, typed on the interface: quantile decoding and dispose. */
import { describe, expect, it } from "vitest";
import { uniformBuckets } from "../src/data/buckets.js";
import type { Prediction, Predictor } from "../src/model/prediction.js";
import { EnsemblePredictor } from "../src/predictor/ensemble.js";
import { LengthPredictor } from "../src/predictor/length-predictor.js";

const buckets = uniformBuckets(512, 8);
const probs: Prediction = { bucket: 0, upperBound: 64, expectedTokens: 40, probabilities: [0.5, 0.3, 0.2, 0, 0, 0, 0, 0] };

function fake(extra: Partial<Predictor> = {}): Predictor & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls, name: "fake", buckets,
    predict: async () => { calls.push("predict"); return probs; },
    predictBatch: async (ps) => { calls.push("predictBatch"); return ps.map(() => probs); },
    ...extra,
  };
}

describe("Predictor capabilities", () => {
  it("LengthPredictor hands the quantile to a predictor that decodes it itself, whatever its name", async () => {
    const own: Prediction = { bucket: 5, upperBound: 384, expectedTokens: 350 };
    const seen: number[] = [];
    const p = fake({ predictBatchAtQuantile: async (ps, { quantile }) => { seen.push(quantile); return ps.map(() => own); } });
    expect(await LengthPredictor.from(p).predictBatch(["a", "b"], { quantile: 0.9 })).toEqual([own, own]);
    expect(seen).toEqual([0.9]);
    expect(await LengthPredictor.from(p).predict("a")).toEqual(probs); // no quantile: plain predictBatch
  });

  it("without the capability the quantile is taken from the probabilities", async () => {
    const p = fake();
    const got = await LengthPredictor.from(p).predict("a", { quantile: 0.75 });
    expect(got.bucket).toBe(1); // cumulative 0.5, 0.8 ≥ 0.75
    expect(got.upperBound).toBe(128);
  });

  it("dispose reaches the predictor that has it, through LengthPredictor and ensembles", async () => {
    let disposed = 0;
    const withDispose = fake({ dispose: async () => { disposed++; } });
    await LengthPredictor.from(withDispose).dispose();
    await LengthPredictor.from(fake()).dispose(); // none: nothing to do
    await new EnsemblePredictor(buckets, [{ predictor: withDispose, weight: 1 }, { predictor: fake(), weight: 1 }]).dispose();
    expect(disposed).toBe(2);
  });
});
