import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bucketOf, logBuckets, percentileBuckets } from "../src/data/buckets.js";
import { prepareDataset } from "../src/data/prepare.js";
import type { PreparedRecord, PreparedScheme } from "../src/data/records.js";
import { renderTemplate } from "../src/data/sources.js";
import { assignSplits } from "../src/data/split.js";
import { quantileSorted } from "../src/data/stats.js";
import { bundledTokenizerDir } from "../src/tokenizers/index.js";
import { tempDir } from "./helpers/tmp.js";

// Reference counter straight from the library (add_special_tokens as the reference `encode`), not via lenpred.
const lib = new HfTokenizer(JSON.parse(readFileSync(join(bundledTokenizerDir(), "tokenizer.json"), "utf8")), {});
const refCount = (s: string, special = true) => lib.encode(s, { add_special_tokens: special }).ids.length;

const dir = tempDir();
const read = (file: string): PreparedRecord[] =>
  readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as PreparedRecord);
const readAll = (out: string, splits = ["train", "val"]) => splits.flatMap((s) => read(join(out, `${s}.jsonl`)));

/** Deterministic pseudo-text so answer lengths spread over several 16-token buckets. */
function words(n: number, salt: number): string {
  const w = ["alpha", "beta", "gamma", "delta", "tokenization", "naïve", "x", "1.5", "world!", "hello"];
  return Array.from({ length: n }, (_, i) => w[(i * 7 + salt) % w.length]).join(" ");
}
function alpacaFixture(n: number): Array<{ instruction: string; input: string; output: string }> {
  return Array.from({ length: n }, (_, i) => ({
    instruction: `Instruction number ${i}`,
    input: i % 3 === 0 ? "" : `some input ${i}`,
    output: words((i * 13) % 90 + 1, i),
  }));
}

describe("prepare: Alpaca (reference recipe)", () => {
  const data = alpacaFixture(60);
  const input = join(dir, "alpaca.json");
  writeFileSync(input, JSON.stringify(data, null, 2));

  it("counts tokens like the reference encode, builds prompts, buckets min(len // 128, 7)", async () => {
    const out = join(dir, "ref");
    const { stats } = await prepareDataset({ input, out });
    const recs = readAll(out);
    expect(recs).toHaveLength(60);
    for (const r of recs) {
      const src = data[(r.id as number) - 1]!;
      expect(r.prompt).toBe(src.input ? `${src.instruction} ${src.input}` : src.instruction);
      expect(r.output_tokens).toBe(refCount(src.output));
      expect(r.prompt_tokens).toBe(refCount(r.prompt));
      expect(r.output_length_bucket).toBe(Math.min(Math.floor(r.output_tokens / 128), 7));
    }
    const scheme = JSON.parse(readFileSync(join(out, "scheme.json"), "utf8")) as PreparedScheme;
    expect(scheme).toMatchObject({ tokenizer: "bert-base-uncased", specialTokens: true, label: "alpaca:output" });
    expect(scheme.buckets.edges).toEqual([128, 256, 384, 512, 640, 768, 896, 1024]);
    // stats.json agrees with the files.
    const hist = new Array(8).fill(0);
    for (const r of recs) hist[r.output_length_bucket]++;
    expect(stats.histogram.all).toEqual(hist);
    expect(stats.majority.accuracy).toBeCloseTo(Math.max(...hist) / 60, 12);
    const sorted = recs.map((r) => r.output_tokens).sort((a, b) => a - b);
    expect(stats.outputTokens.all!.p50).toBeCloseTo(quantileSorted(sorted, 0.5), 2);
    expect(stats.outputTokens.all!.max).toBe(sorted[59]);
    expect(JSON.parse(readFileSync(join(out, "stats.json"), "utf8"))).toEqual(stats);
  });

  it("--no-special-tokens subtracts exactly [CLS] and [SEP]", async () => {
    const out = join(dir, "nospecial");
    await prepareDataset({ input, out, specialTokens: false });
    for (const r of readAll(out)) {
      expect(r.output_tokens).toBe(refCount(data[(r.id as number) - 1]!.output) - 2);
      expect(r.output_tokens).toBe(refCount(data[(r.id as number) - 1]!.output, false));
    }
  });

  it("split is seeded, exact in size, and disjoint; a different seed gives a different split", async () => {
    const a = join(dir, "s1"), b = join(dir, "s2"), c = join(dir, "s3");
    await prepareDataset({ input, out: a, seed: 7, valFraction: 0.1, testFraction: 0.2 });
    await prepareDataset({ input, out: b, seed: 7, valFraction: 0.1, testFraction: 0.2 });
    await prepareDataset({ input, out: c, seed: 8, valFraction: 0.1, testFraction: 0.2 });
    for (const s of ["train", "val", "test"]) expect(readFileSync(join(a, `${s}.jsonl`), "utf8")).toBe(readFileSync(join(b, `${s}.jsonl`), "utf8"));
    const ids = (o: string, s: string) => read(join(o, `${s}.jsonl`)).map((r) => r.id);
    expect([ids(a, "train").length, ids(a, "val").length, ids(a, "test").length]).toEqual([42, 6, 12]);
    expect(new Set([...ids(a, "train"), ...ids(a, "val"), ...ids(a, "test")]).size).toBe(60);
    expect(ids(c, "val")).not.toEqual(ids(a, "val"));
  });

  it("counting on worker threads gives byte-identical output", async () => {
    const big = join(dir, "alpaca-big.json"); // several 256-example batches, so ordering across batches is exercised
    writeFileSync(big, JSON.stringify(alpacaFixture(1100)));
    const a = join(dir, "thr0"), b = join(dir, "thr2");
    await prepareDataset({ input: big, out: a, threads: 0 });
    await prepareDataset({ input: big, out: b, threads: 2 });
    expect(read(join(b, "train.jsonl")).length).toBe(990);
    for (const f of ["train.jsonl", "val.jsonl", "scheme.json"]) expect(readFileSync(join(b, f), "utf8")).toBe(readFileSync(join(a, f), "utf8"));
  });

  it("assignSplits is exact for many sizes", () => {
    for (const n of [1, 2, 9, 10, 11, 999]) {
      const codes = assignSplits(n, { val: 0.1, test: 0 }, 42);
      expect(codes.filter((c) => c === 1).length).toBe(Math.round(n * 0.1));
      expect(codes.filter((c) => c === 0).length).toBe(n - Math.round(n * 0.1));
    }
  });

  it("percentile edges come from the training split only; log edges are the log scheme", async () => {
    const out = join(dir, "pct");
    await prepareDataset({ input, out, buckets: { kind: "percentile", maxLength: 1024, count: 4 } });
    const scheme = JSON.parse(readFileSync(join(out, "scheme.json"), "utf8")) as PreparedScheme;
    const train = read(join(out, "train.jsonl")).map((r) => r.output_tokens);
    expect(scheme.buckets).toEqual(percentileBuckets(train, 4, 1024));
    for (const r of readAll(out)) expect(r.output_length_bucket).toBe(bucketOf(scheme.buckets, r.output_tokens));
    const outLog = join(dir, "log");
    await prepareDataset({ input, out: outLog, buckets: { kind: "log", maxLength: 512, count: 6 } });
    expect((JSON.parse(readFileSync(join(outLog, "scheme.json"), "utf8")) as PreparedScheme).buckets).toEqual(logBuckets(512, 6));
  });

  it("a reused scheme (--scheme) wins over --buckets", async () => {
    const out = join(dir, "reuse");
    const scheme = { kind: "percentile" as const, edges: [10, 20, 1000] };
    await prepareDataset({ input, out, schemeFile: scheme, buckets: { kind: "uniform", maxLength: 1024, count: 8 } });
    for (const r of readAll(out)) expect(r.output_length_bucket).toBe(bucketOf(scheme, r.output_tokens));
  });

  it("templates: custom order, and no trailing space when input is empty", () => {
    expect(renderTemplate("{instruction} {input}", "Do it.", "")).toBe("Do it.");
    expect(renderTemplate("{instruction} {input}", "Do it.", "now")).toBe("Do it. now");
    expect(renderTemplate("Input: {input}\nTask: {instruction}", "T", "I")).toBe("Input: I\nTask: T");
  });
});

describe("prepare: other input shapes", () => {
  it("JSONL logs with output text or output_tokens", async () => {
    const input = join(dir, "log.jsonl");
    writeFileSync(input, "\uFEFF" + [
      { id: "a", prompt: "What is 2+2?", output: "It is four." },
      { id: "b", prompt: "Write an essay.", output_tokens: 700 },
      { prompt: "No id here", output: "fine" },
    ].map((r) => JSON.stringify(r)).join("\n") + "\n\n");
    const out = join(dir, "logout");
    const { stats } = await prepareDataset({ input, out, valFraction: 0 });
    const recs = read(join(out, "train.jsonl"));
    expect(recs.map((r) => [r.id, r.output_tokens, r.output_length_bucket])).toEqual([
      ["a", refCount("It is four."), 0],
      ["b", 700, 5],
      [3, refCount("fine"), 0],
    ]);
    expect(stats.label).toBe("log:output_tokens+output");
    expect(stats.format).toBe("log");
  });

  it("ShareGPT: each human→assistant pair is one example; system turns skipped; empty conversations counted", async () => {
    const input = join(dir, "sharegpt.json");
    writeFileSync(input, JSON.stringify([
      { id: "c1", conversations: [
        { from: "system", value: "be nice" },
        { from: "human", value: "hi there" },
        { from: "gpt", value: "hello! how can I help?" },
        { from: "human", value: "tell me a joke" },
        { from: "gpt", value: "no" },
      ] },
      { id: "c2", conversations: [{ from: "human", value: "unanswered" }] },
      { id: "c3", conversations: [{ from: "user", value: "q" }, { from: "assistant", value: "a a a" }] },
    ]));
    const out = join(dir, "sgout");
    const { stats } = await prepareDataset({ input, out, valFraction: 0 });
    const recs = read(join(out, "train.jsonl"));
    expect(recs.map((r) => [r.id, r.prompt, r.output_tokens])).toEqual([
      ["c1:0", "hi there", refCount("hello! how can I help?")],
      ["c1:1", "tell me a joke", refCount("no")],
      ["c3:0", "q", refCount("a a a")],
    ]);
    expect(stats.counts).toMatchObject({ records: 3, examples: 3, recordsWithoutPairs: 1 });
  });

  it("Vicuna join: keeps only joined records, labels max/mean/L_gt/t0.3", async () => {
    const data = alpacaFixture(20);
    const input = join(dir, "alpaca20.json");
    writeFileSync(input, JSON.stringify(data));
    const rows = [
      { id: "3", L_gt: 10, "L_t0.0": 100, "L_t0.3": 300, "L_t0.5": 50, "L_t0.7": 41 },
      { id: "7", L_gt: 20, "L_t0.0": 1, "L_t0.3": 2, "L_t0.5": 3, "L_t0.7": 5 },
      { id: "12", L_gt: 30, "L_t0.0": 600, "L_t0.3": 600, "L_t0.5": 600, "L_t0.7": 601 },
      { id: "99", L_gt: 1, "L_t0.0": 1, "L_t0.3": 1, "L_t0.5": 1, "L_t0.7": 1 },
    ];
    const lengths = join(dir, "lengths.json");
    writeFileSync(lengths, JSON.stringify(rows));
    const expected: Record<string, number[]> = { max: [300, 5, 601], mean: [123, 3, 600], L_gt: [10, 20, 30], "t0.3": [300, 2, 600] };
    for (const [label, want] of Object.entries(expected)) {
      const out = join(dir, `vic-${label}`);
      const { stats } = await prepareDataset({ input, out, lengths, label, valFraction: 0 });
      const recs = read(join(out, "train.jsonl"));
      expect(recs.map((r) => r.id), label).toEqual([3, 7, 12]);
      expect(recs.map((r) => r.output_tokens), label).toEqual(want);
      expect(recs[0]!.prompt).toBe(`${data[2]!.instruction} ${data[2]!.input}`);
      expect(stats.counts).toMatchObject({ examples: 3, lengthRowsUnmatched: 1, examplesWithoutLength: 17 });
      expect(stats.label).toBe(`vicuna:${label === "t0.3" ? "L_t0.3" : label}`);
    }
  });
});
