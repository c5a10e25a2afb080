/** The model-kind registry (predictor/load.ts): one table maps lenpred.json's `kind` to a lazy loader. */
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { uniformBuckets } from "../src/data/buckets.js";
import { LengthPredictor } from "../src/predictor/length-predictor.js";
import { loadPredictor, modelKinds, registerModelKind } from "../src/predictor/load.js";
import type { Predictor } from "../src/model/prediction.js";
import { LenpredError } from "../src/util/errors.js";
import { tempDir } from "./helpers/tmp.js";

const root = tempDir("lenpred-kinds-");
const scheme = uniformBuckets(512, 8);

function dirOfKind(name: string, kind: string, extra: object = {}): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "lenpred.json"), JSON.stringify({ kind, buckets: scheme, tokenizer: "test-counting", ...extra }));
  return dir;
}

describe("model kind registry", () => {
  it("has every built-in kind", () => {
    expect(modelKinds()).toEqual(expect.arrayContaining(["majority", "median", "linear", "ngram", "distilbert", "ensemble"]));
  });

  it("opens a registered kind with the meta read once, the options given, and ensemble members through it", async () => {
    const seen: { kind: string; opts: object }[] = [];
    registerModelKind("test-fixed", async (meta, dir, opts) => {
      seen.push({ kind: meta.kind, opts });
      const p: Predictor = {
        name: "test-fixed", buckets: meta.buckets,
        predict: async () => ({ bucket: 2, upperBound: 192, expectedTokens: 150 }),
        predictBatch: async (ps) => ps.map(() => ({ bucket: 2, upperBound: 192, expectedTokens: 150 })),
      };
      expect(dir).toContain("fixed");
      return p;
    });
    const p = await loadPredictor(dirOfKind("fixed", "test-fixed"), { threads: 1 });
    expect(await p.predict("x")).toEqual({ bucket: 2, upperBound: 192, expectedTokens: 150 });
    expect(seen).toEqual([{ kind: "test-fixed", opts: { threads: 1 } }]);

    const lp = await LengthPredictor.load(join(root, "fixed"));
    expect(await lp.predictLength("hello")).toBe(192);

    const ens = dirOfKind("ens", "ensemble", { members: [{ dir: "fixed" }] });
    dirOfKind("ens/fixed", "test-fixed");
    expect((await (await loadPredictor(ens)).predict("x")).bucket).toBe(2);
  });

  it("refuses a kind registered twice, and names lenpred.json's kind field for an unknown kind", async () => {
    expect(() => registerModelKind("ngram", async () => { throw new Error("unreachable"); })).toThrow(/already registered/);
    const err = await loadPredictor(dirOfKind("unknown", "no-such-kind")).catch((e) => e);
    expect(err).toBeInstanceOf(LenpredError);
    expect(String(err.message)).toMatch(/unknown model kind 'no-such-kind'.*lenpred\.json.*kind|lenpred\.json.*kind.*unknown model kind/s);
  });
});
