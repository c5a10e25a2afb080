import { describe, expect, it } from "vitest";
import { OnlineLearner } from "../src/online/learner.js";
import { LenpredError } from "../src/util/errors.js";
import { SyntheticBase, syntheticStream } from "./helpers/synthetic-base.js";

/** Prequential pass: predict each record, then observe it; returns the predictions. */
async function prequential(l: OnlineLearner, stream: ReturnType<typeof syntheticStream>, model?: string) {
  const preds = [];
  for (const r of stream) {
    preds.push((await l.predictBatch([r.prompt], { model: r.model ?? model }))[0]!);
    await l.observe([{ ...r, model: r.model ?? model }]);
  }
  return preds;
}

function mae(preds: { expectedTokens: number }[], stream: { output_tokens: number }[], from = 0): number {
  let s = 0;
  for (let i = from; i < stream.length; i++) s += Math.abs(preds[i]!.expectedTokens - stream[i]!.output_tokens);
  return s / (stream.length - from);
}

describe("OnlineLearner calibration", () => {
  it("learns a known scale factor within the first tens of observations", async () => {
    const l = new OnlineLearner(new SyntheticBase());
    const stream = syntheticStream(60, 3, 0.2, 1, "big");
    const preds = await prequential(l, stream);
    // The base alone is off by 3×; after 30 observations the learned scale is close to 3.
    const scale = l.stats()[0]!.scale;
    expect(scale).toBeGreaterThan(2.6);
    expect(scale).toBeLessThan(3.4);
    const baseMae = stream.slice(30).reduce((s, r) => s + Math.abs(Number(/len=(\d+)/.exec(r.prompt)![1]) - r.output_tokens), 0) / 30;
    expect(mae(preds, stream, 30)).toBeLessThan(0.35 * baseMae);
    expect(preds[59]!.expectedTokens).toBeGreaterThan(preds[0]!.expectedTokens * 0 + Number(/len=(\d+)/.exec(stream[59]!.prompt)![1]) * 2.5);
  });

  it("reserveTokens covers the requested quantile (ACI) and may exceed the last bucket edge", async () => {
    for (const q of [0.9, 0.7]) {
      const l = new OnlineLearner(new SyntheticBase(), { quantile: q });
      const stream = syntheticStream(1200, 4, 0.5, 7, "long");
      const preds = await prequential(l, stream);
      const second = stream.slice(600);
      const cov = second.filter((r, i) => r.output_tokens <= preds[600 + i]!.reserveTokens).length / second.length;
      expect(cov).toBeGreaterThan(q - 0.04);
      expect(cov).toBeLessThan(q + 0.04);
      expect(Math.max(...preds.map((p) => p.reserveTokens))).toBeGreaterThan(1024);
      // upperBound keeps the S³ bucket semantics
      for (const p of preds) expect(p.upperBound).toBe(l.buckets.edges[p.bucket]);
    }
  });

  it("the point estimate follows a step in the target's lengths within ~100 observations (the window is 1000)", async () => {
    const l = new OnlineLearner(new SyntheticBase());
    const before = syntheticStream(600, 1, 0.2, 21, "d"), after = syntheticStream(300, 3, 0.2, 22, "d");
    const preds = await prequential(l, [...before, ...after]);
    const ratios = after.slice(100).map((r, i) => preds[700 + i]!.expectedTokens / Number(/len=(\d+)/.exec(r.prompt)![1])).sort((a, b) => a - b);
    // A whole-window median would still be in the old regime (600 of ≤ 900 residuals at 1×).
    const median = ratios[ratios.length >> 1]!;
    expect(median).toBeGreaterThan(2.6);
    expect(median).toBeLessThan(3.4);
    // Reservations still come from the whole window with ACI: after the step they keep covering.
    const cov = after.slice(100).filter((r, i) => r.output_tokens <= preds[700 + i]!.reserveTokens).length / 200;
    expect(cov).toBeGreaterThan(0.8);
  });

  it("ACI re-establishes coverage after the target drifts", async () => {
    const l = new OnlineLearner(new SyntheticBase(), { calibrator: { window: 300 } });
    const a = syntheticStream(600, 1, 0.3, 3, "m");
    const b = syntheticStream(900, 2.5, 0.3, 4, "m");
    const preds = await prequential(l, [...a, ...b]);
    const tail = b.slice(300);
    const cov = tail.filter((r, i) => r.output_tokens <= preds[600 + 300 + i]!.reserveTokens).length / tail.length;
    expect(cov).toBeGreaterThan(0.86);
    expect(cov).toBeLessThan(0.94);
  });
});

describe("OnlineLearner targets", () => {
  it("keeps per-model state apart: learning one target does not move another", async () => {
    const l = new OnlineLearner(new SyntheticBase());
    const before = (await l.predictBatch(["len=100 x"], { model: "b" }))[0]!;
    await prequential(l, syntheticStream(200, 5, 0.2, 2, "a"));
    const b = (await l.predictBatch(["len=100 x"], { model: "b" }))[0]!;
    const a = (await l.predictBatch(["len=100 x"], { model: "a" }))[0]!;
    expect(b).toEqual(before);
    expect(a.expectedTokens).toBeGreaterThan(400);
    expect(l.models()).toEqual(["a"]);
  });

  it("caps the number of targets, and a flood for one name neither evicts others nor grows memory", async () => {
    const l = new OnlineLearner(new SyntheticBase(), { maxModels: 2, calibrator: { window: 50 }, statsWindow: 20 });
    await l.observe([{ prompt: "len=10 a", output_tokens: 30, model: "a" }, { prompt: "len=10 b", output_tokens: 10, model: "b" }]);
    await expect(l.observe([{ prompt: "len=10 c", output_tokens: 10, model: "c" }])).rejects.toThrow(/too many target models.*field 'model'|field 'model'.*too many target models/);
    const flood = syntheticStream(500, 2, 0.1, 5, "a");
    await l.observe(flood.slice(0, 250));
    await l.observe(flood.slice(250));
    expect(l.models().sort()).toEqual(["a", "b"]);
    const snap = l.snapshot();
    expect(snap.targets.a!.calibrator.xs.length).toBe(50);
    expect(snap.targets.a!.stats.actual.length).toBe(20);
    expect(snap.targets.b!.calibrator.xs).toHaveLength(1);
  });

  it("validates observations as untrusted input, naming the field, and learns nothing from a bad batch", async () => {
    const l = new OnlineLearner(new SyntheticBase());
    const bad: [unknown, RegExp][] = [
      [{ prompt: "x", output_tokens: -1 }, /field 'output_tokens'/],
      [{ prompt: "x", output_tokens: 1.5 }, /field 'output_tokens'/],
      [{ prompt: "  ", output_tokens: 1 }, /field 'prompt'.*empty/],
      [{ output_tokens: 1 }, /field 'prompt'/],
      [{ prompt: "x", messages: [], output_tokens: 1 }, /exactly one/],
      [{ messages: [{ role: "system", content: "hi" }], output_tokens: 1 }, /field 'messages'/],
      [{ messages: [{ role: "user", content: 5 }], output_tokens: 1 }, /field 'messages\[0\].content'/],
      [{ prompt: "x", output_tokens: 1, model: "bad name\n" }, /field 'model'/],
      [{ observations: [{ prompt: "x", output_tokens: 1 }, { prompt: "y", output_tokens: "2" }] }, /field 'observations\[1\].output_tokens'/],
      [{ observations: new Array(1001).fill({ prompt: "x", output_tokens: 1 }) }, /limit 1000/],
    ];
    for (const [body, re] of bad) {
      const e = await l.observe(body).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(LenpredError);
      expect((e as Error).message).toMatch(re);
    }
    expect(l.models()).toEqual([]);
    // messages: the last user turn is the prompt
    await l.observe({ messages: [{ role: "user", content: "len=10 first" }, { role: "assistant", content: "ok" }, { role: "user", content: [{ type: "text", text: "len=10 second" }] }], output_tokens: 40 });
    expect(l.stats()[0]).toMatchObject({ model: "default", observations: 1 });
  });

  it("snapshot/restore resumes the learned state exactly", async () => {
    const l = new OnlineLearner(new SyntheticBase());
    // A step in scale, so that the point's best offset horizon is a recent one (its running errors are state too).
    await prequential(l, [...syntheticStream(100, 1, 0.3, 9, "x"), ...syntheticStream(100, 3, 0.3, 10, "x")]);
    const snap = JSON.parse(JSON.stringify(l.snapshot()));
    const r = new OnlineLearner(new SyntheticBase());
    r.restore(snap);
    const p = ["len=77 a", "len=150 b"];
    expect(await r.predictBatch(p, { model: "x" })).toEqual(await l.predictBatch(p, { model: "x" }));
    expect(r.stats()).toEqual(l.stats());
    expect(() => r.restore({ version: 2 } as never)).toThrow(LenpredError);
  });

  it("reuses the base prediction of a predicted prompt when it is observed", async () => {
    const base = new SyntheticBase();
    const l = new OnlineLearner(base);
    await l.predictBatch(["len=5 a", "len=6 b"]);
    await l.observe([{ prompt: "len=5 a", output_tokens: 9 }, { prompt: "len=6 b", output_tokens: 9 }]);
    expect(base.calls).toBe(2);
  });
});

describe("OnlineLearner never blocks predictions", () => {
  it("predicts while an observation's learning is still waiting for the base model", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    class SlowBase extends SyntheticBase {
      override async predictBatch(prompts: string[]) {
        if (prompts.some((p) => p.includes("slow"))) await gate;
        return super.predictBatch(prompts);
      }
    }
    const l = new OnlineLearner(new SlowBase());
    await l.observe([{ prompt: "len=10 warm", output_tokens: 30, model: "m" }]);
    let learned = false;
    const pending = l.observe([{ prompt: "len=10 slow", output_tokens: 30, model: "m" }]).then(() => (learned = true));
    const [p] = await l.predictBatch(["len=20 fast"], { model: "m" });
    expect(learned).toBe(false);
    expect(l.backlog).toBe(0); // taken off the queue, being learned
    expect(p!.observations).toBe(1);
    release();
    await pending;
    expect((await l.predictBatch(["len=20 fast"], { model: "m" }))[0]!.observations).toBe(2);
  });
});

describe("OnlineLearner.load", () => {
  it("takes a bundled model name: resolved to its directory, whose heldout.json gives the drift reference", async () => {
    const { readFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { repoRoot } = await import("../src/util/paths.js");
    const dir = join(repoRoot, "models", "alpaca-s3");
    const learner = await OnlineLearner.load("alpaca-s3");
    try {
      expect(learner.modelDir).toBe(dir); // retraining finds the DistilBERT member from here
      const mae = JSON.parse(readFileSync(join(dir, "heldout.json"), "utf8")).metrics.mae as number;
      expect((learner as unknown as { opts: { validationMae?: number } }).opts.validationMae).toBe(mae);
    } finally {
      await learner.dispose();
    }
  });
});
