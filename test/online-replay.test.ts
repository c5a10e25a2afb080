import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { OnlineLearner } from "../src/online/learner.js";
import { readTrace, replay, summarize } from "../src/online/replay.js";
import { runCli } from "./helpers/cli.js";
import { SyntheticBase } from "./helpers/synthetic-base.js";
import { tempDir } from "./helpers/tmp.js";

describe("replay (prequential)", () => {
  it("predicts each record before observing it", async () => {
    const dir = tempDir();
    const file = join(dir, "trace.jsonl");
    // Every answer is 10× what the base predicts: a learner that observed first would predict ≈10× already.
    const recs = Array.from({ length: 30 }, (_, i) => ({ prompt: `len=${40 + i} q${i}`, output_tokens: 10 * (40 + i), model: "big" }));
    writeFileSync(file, recs.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const trace = await readTrace(file);
    const out = await replay(new OnlineLearner(new SyntheticBase()), trace);
    expect(out[0]!.expectedTokens).toBe(40); // nothing learned yet: the base's answer
    expect(out[0]!.reserveTokens).toBe(out[0]!.static.reserveTokens);
    expect(out[29]!.expectedTokens).toBeGreaterThan(5 * 69);
    // Each prediction is what a learner that saw exactly the records before it predicts.
    for (const i of [1, 5, 17]) {
      const l = new OnlineLearner(new SyntheticBase());
      await l.observe(recs.slice(0, i));
      const [p] = await l.predictBatch([recs[i]!.prompt], { model: "big" });
      expect(out[i]!.expectedTokens).toBeCloseTo(p!.expectedTokens, 1);
      expect(out[i]!.reserveTokens).toBe(p!.reserveTokens);
    }
    const s = summarize(out, 0.9, 10);
    expect(s.curve).toHaveLength(3);
    expect(s.online.secondHalf.mae).toBeLessThan(s.static.secondHalf.mae);
  });

  it("CLI: multi-model trace with output text → predictions with reserveTokens, summary, SVG; simulate uses them", () => {
    const dir = tempDir();
    const model = join(dir, "median");
    const edges = [16, 32, 48, 64];
    mkdirSync(model);
    writeFileSync(join(model, "lenpred.json"), JSON.stringify({ kind: "median", buckets: { kind: "uniform", edges }, tokenizer: "bert-base-uncased", bucket: 0, expectedTokens: 5 }));
    const lines = [];
    for (let i = 0; i < 80; i++) {
      lines.push({ source: "t", model: "chatty", prompt: `Tell me about item ${i}.`, output: Array.from({ length: 20 + (i % 15) }, (_, k) => `word${k}`).join(" ") });
      lines.push({ source: "t", model: "terse", prompt: `Tell me about item ${i}.`, output: "ok" });
    }
    const trace = join(dir, "trace.jsonl");
    writeFileSync(trace, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    const out = join(dir, "preds.jsonl");
    const r = runCli(["replay", "--trace", trace, "--model", model, "--target", "chatty", "--out", out, "--summary", join(dir, "s.json"), "--plot", join(dir, "c.svg"), "--prepared-out", join(dir, "prep"), "--window", "20"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/replayed 80 records/);
    const preds = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(preds).toHaveLength(80);
    expect(preds.every((p) => p.model === "chatty" && p.output_tokens > 20 && typeof p.reserveTokens === "number")).toBe(true);
    const s = JSON.parse(readFileSync(join(dir, "s.json"), "utf8"));
    expect(s.online.secondHalf.coverage).toBeGreaterThan(s.static.secondHalf.coverage);
    expect(readFileSync(join(dir, "c.svg"), "utf8")).toMatch(/^<svg/);
    const sim = runCli(["simulate", "--data", join(dir, "prep"), "--predictions", out, "--policies", "s3,oracle", "--json"]);
    expect(sim.code, sim.stderr).toBe(0);
    expect(JSON.parse(sim.stdout.trim().split("\n").pop()!).predictor.reserve_tokens_coverage).toBe(s.online.all.coverage);

    const bad = runCli(["replay", "--trace", trace, "--model", model, "--target", "nobody", "--out", join(dir, "n.jsonl")]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/no records for target 'nobody'/);
  }, 120_000);
});
