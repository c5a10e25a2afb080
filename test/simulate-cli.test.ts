import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { bucketOf, type BucketScheme } from "../src/data/buckets.js";
import { DEFAULT_POLICIES, readPredictions, runSimulation } from "../src/simulate/index.js";
import { createRng } from "../src/util/rng.js";
import { runCli } from "./helpers/cli.js";
import { tempDir } from "./helpers/tmp.js";

const scheme: BucketScheme = { kind: "uniform", edges: [64, 128, 192, 256, 320, 384, 448, 512] };
const N = 300;
let dir: string;
let preds: string;
let outputs: number[];

/** A prepared directory (test.jsonl + scheme.json) and a predictions file with one off-by-one-bucket error in five. */
beforeAll(() => {
  dir = tempDir("lenpred-sim-");
  const rng = createRng(42);
  outputs = [];
  const lines: string[] = [];
  const plines: string[] = [];
  for (let i = 0; i < N; i++) {
    const o = rng.next() < 0.85 ? 1 + rng.int(120) : 120 + rng.int(500);
    const p = 5 + rng.int(60);
    outputs.push(o);
    const b = bucketOf(scheme, o);
    lines.push(JSON.stringify({ id: i, prompt: `q${i}`, prompt_tokens: p, output_tokens: o, output_length_bucket: b }));
    const pb = i % 5 === 0 ? Math.max(0, b - 1) : b;
    plines.push(JSON.stringify({ index: i, bucket: pb, upperBound: scheme.edges[pb], expectedTokens: scheme.edges[pb]! - 32 }));
  }
  writeFileSync(join(dir, "test.jsonl"), lines.join("\n") + "\n");
  writeFileSync(join(dir, "scheme.json"), JSON.stringify({ buckets: scheme, tokenizer: "test", specialTokens: false, label: "test", template: "" }));
  preds = join(dir, "preds.jsonl");
  writeFileSync(preds, plines.join("\n") + "\n");
});

function writePreds(name: string, records: unknown[]): string {
  const f = join(dir, name);
  writeFileSync(f, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return f;
}

function goodRecords(): Record<string, unknown>[] {
  return readFileSync(preds, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("lenpred simulate (CLI)", () => {
  it("with --json prints only the report's JSON on stdout (the table on stderr) and writes SVG plots", () => {
    const plots = join(dir, "plots");
    const out = join(dir, "report.json");
    const r = runCli(["simulate", "--data", dir, "--predictions", preds, "--json", "--plots", plots, "--out", out]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/policy\s+tok\/s/);
    expect(r.stderr).toMatch(/plots: /);
    const report = JSON.parse(r.stdout) as { policies: Record<string, Record<string, number>>; trace: { requests: number } };
    expect(Object.keys(report.policies).sort()).toEqual([...DEFAULT_POLICIES].sort());
    for (const m of Object.values(report.policies)) {
      for (const k of ["throughput_tokens_per_s", "throughput_requests_per_s", "latency_p50_s", "latency_p99_s", "preemptions", "recomputed_tokens", "mean_batch_size", "memory_utilization"]) {
        expect(typeof m[k], k).toBe("number");
      }
      expect(m.output_tokens).toBe(outputs.reduce((a, b) => a + b, 0));
      expect(m.latency_p99_s).toBeGreaterThanOrEqual(m.latency_p50_s!);
    }
    // One prediction in five is a bucket too low, so the S³ supervisor must have preempted.
    expect(report.policies.s3!.preemptions).toBeGreaterThan(0);
    expect(report.policies.oracle!.preemptions).toBe(0);
    expect(report.trace.requests).toBe(N);
    expect(JSON.parse(readFileSync(out, "utf8"))).toEqual(report);
    expect(readdirSync(plots).sort()).toEqual(["latency-cdf.svg", "memory.svg", "throughput.svg"]);
    for (const f of readdirSync(plots)) {
      const svg = readFileSync(join(plots, f), "utf8");
      expect(svg.startsWith("<svg")).toBe(true);
      expect(svg).toContain("s3-sjf"); // legend / axis labels name the policies
    }
  });

  it("fails with exit 2 and names file, record and field for a bad predictions file", () => {
    const recs = goodRecords();
    recs[7] = { ...recs[7], bucket: 99 };
    const bad = writePreds("bad-bucket.jsonl", recs);
    const r = runCli(["simulate", "--data", dir, "--predictions", bad, "--policies", "s3"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("bad-bucket.jsonl, record 7, field 'bucket'");
    expect(r.stderr).toMatch(/out of range 0\.\.7/);
  });

  it("rejects unknown policies and bad numbers in options", () => {
    const a = runCli(["simulate", "--data", dir, "--policies", "s3,fifo"]);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/unknown policy 'fifo'/);
    const b = runCli(["simulate", "--data", dir, "--rate", "fast"]);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--rate expects a number >= 0, got 'fast'/);
  });
});

describe("predictions file validation", () => {
  it("accepts a complete file in any order", async () => {
    const recs = goodRecords().reverse();
    const p = await readPredictions(writePreds("reversed.jsonl", recs), N, scheme);
    expect(p.bucket[0]).toBe(goodRecords()[0]!.bucket);
    expect(p.expected[N - 1]).toBe(goodRecords()[N - 1]!.expectedTokens);
  });

  const cases: [string, (r: Record<string, unknown>[]) => unknown[], RegExp][] = [
    ["missing index", (r) => r.slice(0, N - 1).concat([]).filter((x) => x.index !== 17), /2 of 300 records of the trace have no prediction \(indices 17, 299\)/],
    ["duplicate index", (r) => { r[5] = { ...r[5], index: 3 }; return r; }, /record 5, field 'index': duplicate prediction for index 3 \(first seen at record 3\)/],
    ["index out of range", (r) => { r[2] = { ...r[2], index: N }; return r; }, /record 2, field 'index': index 300 is out of range/],
    ["negative bucket", (r) => { r[4] = { ...r[4], bucket: -1 }; return r; }, /record 4, field 'bucket': expected a non-negative integer/],
    ["upperBound from another scheme", (r) => { r[9] = { ...r[9], upperBound: 1000 }; return r; }, /record 9, field 'upperBound': expected \d+ \(the scheme's upper edge/],
    ["missing expectedTokens", (r) => { delete r[1]!.expectedTokens; return r; }, /record 1, field 'expectedTokens'/],
    ["not an object", (r) => { r[0] = [1, 2]; return r; }, /record 0: expected a JSON object/],
  ];
  for (const [label, mutate, msg] of cases) {
    it(`rejects ${label}`, async () => {
      const f = writePreds(`${label.replace(/ /g, "-")}.jsonl`, mutate(goodRecords()));
      await expect(readPredictions(f, N, scheme)).rejects.toThrow(msg);
    });
  }

  it("rejects malformed JSON with the record number", async () => {
    const f = join(dir, "malformed.jsonl");
    writeFileSync(f, readFileSync(preds, "utf8").split("\n").slice(0, 3).join("\n") + "\n{oops\n");
    await expect(readPredictions(f, N, scheme)).rejects.toThrow(/malformed\.jsonl, record 3: malformed JSON/);
  });
});

describe("runSimulation", () => {
  it("is deterministic for a seed (noisy predictor, Poisson arrivals) and changes with it", async () => {
    const cfg = { data: dir, split: "test", predictor: "noisy:0.8", model: "gpt-j-6b", gpu: "a100-80gb", rate: 30, policies: ["s3", "paged-sjf"] as never };
    const strip = (r: Awaited<ReturnType<typeof runSimulation>>) =>
      JSON.stringify(Object.values(r.report.policies).map((m) => ({ ...m, wall_s: 0 })));
    const a = await runSimulation({ ...cfg, seed: 1 });
    const b = await runSimulation({ ...cfg, seed: 1 });
    const c = await runSimulation({ ...cfg, seed: 2 });
    expect(strip(a)).toBe(strip(b));
    expect(strip(a)).not.toBe(strip(c));
    expect(a.report.trace.arrivals).toEqual({ poisson_rate_per_s: 30 });
  });

  it("reads a split file directly, limits requests, and refuses --split all on a file", async () => {
    const r = await runSimulation({ data: join(dir, "test.jsonl"), split: "test", limit: 50, predictor: "oracle", model: "llama-2-7b", gpu: "a100-40gb", seed: 0, policies: ["oracle"] });
    expect(r.report.policies.oracle!.requests).toBe(50);
    await expect(runSimulation({ data: join(dir, "test.jsonl"), split: "all", model: "gpt-j-6b", gpu: "a100-80gb", seed: 0, policies: ["s3"] }))
      .rejects.toThrow(/--split all needs --data to be a prepared directory/);
    const noScheme = join(dir, "elsewhere");
    mkdirSync(noScheme, { recursive: true });
    writeFileSync(join(noScheme, "x.jsonl"), readFileSync(join(dir, "test.jsonl")));
    await expect(runSimulation({ data: join(noScheme, "x.jsonl"), split: "test", model: "gpt-j-6b", gpu: "a100-80gb", seed: 0, policies: ["s3"] }))
      .rejects.toThrow(/scheme\.json/);
    expect(existsSync(join(noScheme, "x.jsonl"))).toBe(true);
  });

  it("--split all uses the splits that exist; a missing split names what is there", async () => {
    const all = await runSimulation({ data: dir, split: "all", predictor: "oracle", model: "gpt-j-6b", gpu: "a100-80gb", seed: 0, policies: ["oracle"] });
    expect(all.report.trace.requests).toBe(N); // only test.jsonl exists in the fixture
    await expect(runSimulation({ data: dir, split: "val", model: "gpt-j-6b", gpu: "a100-80gb", seed: 0, policies: ["s3"] }))
      .rejects.toThrow(/val\.jsonl, field 'split': split file not found \(splits here: test;/);
  });
});
