import { describe, expect, it } from "vitest";
import { NgramPredictor } from "../src/baselines/ngram/model.js";
import { bucketCount } from "../src/data/buckets.js";
import { EnsemblePredictor } from "../src/predictor/ensemble.js";
import { FastHead, fastFeatures, findFastMember } from "../src/online/fast-member.js";
import { OnlineLearner } from "../src/online/learner.js";
import { kendallTauB } from "../src/metrics/kendall.js";
import { createRng } from "../src/util/rng.js";
import { SCHEME, SyntheticBase } from "./helpers/synthetic-base.js";

/** A small random n-gram model with a hidden layer: its readout knows nothing about the target's lengths. */
function randomNgram(seed: number): NgramPredictor {
  const rng = createRng(seed);
  const hashBits = 10, H = 16, k = bucketCount(SCHEME), d = 1 << hashBits;
  const r = (n: number, s: number) => Float32Array.from({ length: n }, () => (rng.next() - 0.5) * 2 * s);
  return new NgramPredictor(SCHEME, "bert-base-uncased", { hashBits, bigrams: false, lineStartWords: 0, charNgrams: [], lengthFeatures: false }, "regression",
    { hidden: H, E: r(d * H, 1), b1: new Float32Array(H).fill(0.2), W: r(H * k, 0.1), bc: new Float32Array(k), R: r(H, 0.05), br: Float32Array.of(Math.log(60)) });
}

/** The target answers "long" prompts with ~400 tokens and "short" ones with ~25: only the text tells them apart. */
function stream(n: number, seed: number) {
  const rng = createRng(seed);
  return Array.from({ length: n }, (_, i) => {
    const long = rng.next() < 0.5;
    return { prompt: `${long ? "elaborate essay" : "brief answer"} topic ${i % 13}`, output_tokens: Math.round((long ? 400 : 25) * Math.exp(0.2 * (rng.next() - 0.5))), model: "t" };
  });
}

describe("online learning of the n-gram member", () => {
  it("finds the n-gram member inside an ensemble, with its weight", () => {
    const ng = randomNgram(1);
    const ens = new EnsemblePredictor(SCHEME, [{ predictor: new SyntheticBase(), weight: 3 }, { predictor: ng, weight: 1 }]);
    expect(findFastMember(ens)).toMatchObject({ weight: 0.25 });
    expect(findFastMember(new SyntheticBase())).toBeUndefined();
  });

  it("learns what the target's lengths depend on, per target, which calibration alone cannot", async () => {
    const data = stream(400, 2);
    const run = async (fast: boolean) => {
      const l = new OnlineLearner(randomNgram(1), { fast: fast ? {} : false });
      const preds: number[] = [];
      for (const r of data) {
        preds.push((await l.predictBatch([r.prompt], { model: "t" }))[0]!.expectedTokens);
        await l.observe([r]);
      }
      const half = data.slice(200);
      return { l, tau: kendallTauB(preds.slice(200), half.map((r) => r.output_tokens)), mae: half.reduce((s, r, i) => s + Math.abs(preds[200 + i]! - r.output_tokens), 0) / 200 };
    };
    const withFast = await run(true), calOnly = await run(false);
    // two length classes: τ-b is at most ≈ 0.5 here (pairs within a class are noise)
    expect(withFast.tau).toBeGreaterThan(0.45);
    expect(withFast.tau).toBeGreaterThan(calOnly.tau + 0.25);
    expect(withFast.mae).toBeLessThan(0.5 * calOnly.mae);
    // another target still starts from the base
    const [other] = await withFast.l.predictBatch(["elaborate essay topic 1"], { model: "other" });
    const [base] = await withFast.l.predictStatic(["elaborate essay topic 1"]);
    expect(other!.expectedTokens).toBe(base!.expectedTokens);
  });

  it("publishes new weights by reference swap (a reader's arrays are never mutated)", () => {
    const ng = randomNgram(3);
    const m = findFastMember(ng)!;
    const head = FastHead.from(m);
    const before = head.toJSON();
    const f = fastFeatures({ ngram: m.ngram! }, "elaborate essay topic 2");
    const published = (head as unknown as { R: Float32Array }).R;
    const copy = Float32Array.from(published);
    head.step(f.h, Math.log1p(400));
    expect(Array.from(published)).toEqual(Array.from(copy));
    expect((head as unknown as { R: Float32Array }).R).not.toBe(published);
    expect(head.predict(f.h)).toBeGreaterThan(FastHead.restore(before, m)!.predict(f.h));
    // the base model's own weights are untouched
    expect(Array.from(ng.params.R)).toEqual(before.R.map((x) => Math.fround(x)));
  });
});
