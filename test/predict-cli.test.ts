import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { uniformBuckets } from "../src/data/buckets.js";
import { parsePredictionRecord } from "../src/metrics/join.js";
import { LengthPredictor } from "../src/predictor/length-predictor.js";
import { runCli } from "./helpers/cli.js";
import { writeTinyModel } from "./helpers/predictor-fixtures.js";
import { tempDir } from "./helpers/tmp.js";
import { repoRoot } from "../src/util/paths.js";

const root = tempDir("lenpred-predict-cli-");
const scheme = uniformBuckets(512, 8);
const model = writeTinyModel(join(root, "model"), scheme, 8);
const prompts = ["write a poem about the sea", "list one word", "a long detailed story", "the essay", "short poems"];

// A prepared directory (what `lenpred prepare` writes) for the eval round trip.
const data = join(root, "data");
mkdirSync(data);
writeFileSync(join(data, "scheme.json"), JSON.stringify({ buckets: scheme, tokenizer: "bert-base-uncased", specialTokens: false, label: "test", template: "{instruction}" }));
writeFileSync(join(data, "test.jsonl"), prompts.map((p, i) => JSON.stringify({ id: `r${i}`, prompt: p, prompt_tokens: 5, output_tokens: 40 * i, output_length_bucket: Math.floor((40 * i) / 64) })).join("\n") + "\n");

describe("lenpred predict", () => {
  it("prints one prediction as JSON, equal to the library's", async () => {
    const r = runCli(["predict", "--model", model.dir, "write a poem about the sea"]);
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    const lib = await LengthPredictor.load(model.dir);
    const want = await lib.predict("write a poem about the sea");
    await lib.dispose();
    expect(got.bucket).toBe(want.bucket);
    expect(got.upperBound).toBe(want.upperBound);
    expect(got.expectedTokens).toBeCloseTo(want.expectedTokens, 2);
    expect(got.probabilities).toHaveLength(8);
    const q = JSON.parse(runCli(["predict", "--model", model.dir, "--quantile", "0.99", "--no-probabilities", "write a poem about the sea"]).stdout);
    expect(q.probabilities).toBeUndefined();
    expect(q.bucket).toBeGreaterThanOrEqual(got.bucket);
  });

  it("--file → --out writes the predictions JSONL that lenpred eval scores", () => {
    const out = join(root, "preds.jsonl");
    const r = runCli(["predict", "--model", model.dir, "--file", join(data, "test.jsonl"), "--out", out, "--batch-size", "2"]);
    expect(r.code, r.stderr).toBe(0);
    const lines = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.index, l.id])).toEqual(prompts.map((_, i) => [i, `r${i}`]));
    lines.forEach((l, i) => parsePredictionRecord(l, scheme, { file: out, record: i }));
    // Same answers as single predictions.
    const single = JSON.parse(runCli(["predict", "--model", model.dir, prompts[2]!]).stdout);
    expect(lines[2].bucket).toBe(single.bucket);
    const ev = runCli(["eval", "--data", data, "--split", "test", "--preds", out, "--json"]);
    expect(ev.code, ev.stderr).toBe(0);
    const report = JSON.parse(ev.stdout.trim().split("\n").pop()!);
    expect(report.n).toBe(5);
  });

  it("--file without --out streams the JSONL to stdout; bare string lines work too", () => {
    const f = join(root, "strings.jsonl");
    writeFileSync(f, prompts.map((p) => JSON.stringify(p)).join("\n") + "\n");
    const r = runCli(["predict", "--model", model.dir, "--file", f, "--no-probabilities"]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.index)).toEqual([0, 1, 2, 3, 4]);
    expect(lines.every((l) => l.id === undefined && l.probabilities === undefined)).toBe(true);
  });

  it("rejects a bad input line naming file, record and field, leaving no output file", () => {
    const bad = join(root, "bad.jsonl");
    writeFileSync(bad, `{"prompt": "write a poem"}\n"a bare string prompt"\n{"text": "no prompt here"}\n`);
    const out = join(root, "bad-preds.jsonl");
    const r = runCli(["predict", "--model", model.dir, "--file", bad, "--out", out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bad}, record 2, field 'prompt': missing prompt field`);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(root).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  it("explains usage errors", () => {
    const both = runCli(["predict", "--model", model.dir, "--file", "x.jsonl", "a prompt"]);
    expect([both.code, both.stderr]).toEqual([2, expect.stringMatching(/either a prompt argument or --file, not both/)]);
    // Neither (nothing piped: stdin empty) names what to give, not "not both".
    const neither = runCli(["predict", "--model", model.dir], { input: "" });
    expect(neither.code).toBe(2);
    expect(neither.stderr).toMatch(/no prompt: give a prompt argument, pipe it on stdin/);
    expect(neither.stderr).not.toMatch(/not both/);
    expect(runCli(["predict", "--model", model.dir, "--quantile", "2", "x"]).stderr).toMatch(/--quantile must be in \(0, 1\)/);
    expect(runCli(["predict", "--model", join(root, "nope"), "x"]).stderr).toMatch(/not a lenpred model directory/);
  });

  it("rejects empty prompts and names the record of a JSONL with one", () => {
    for (const p of ["", "   \n "]) {
      const r = runCli(["predict", "--model", model.dir, p]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/field 'prompt': prompt is empty/);
    }
    const f = join(root, "blank.jsonl");
    writeFileSync(f, JSON.stringify({ prompt: "fine" }) + "\n" + JSON.stringify({ prompt: " " }) + "\n");
    const out = join(root, "blank-preds.jsonl");
    const r = runCli(["predict", "--model", model.dir, "--file", f, "--out", out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${f}, record 1, field 'prompt': prompt is empty`);
    expect(existsSync(out)).toBe(false);
  });

  it("--model takes a bundled model name; an existing directory of that name wins", async () => {
    const prompt = "write a poem about the sea";
    const bundled = await LengthPredictor.load(join(repoRoot, "models", "alpaca-s3"));
    const wantBundled = await bundled.predict(prompt);
    await bundled.dispose();
    const elsewhere = tempDir("lenpred-cwd-");
    const r = runCli(["predict", "--model", "alpaca-s3", "--no-probabilities", prompt], { cwd: elsewhere });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ bucket: wantBundled.bucket, upperBound: wantBundled.upperBound });
    expect(JSON.parse(r.stdout).expectedTokens).toBeCloseTo(wantBundled.expectedTokens, 2); // the CLI rounds
    // A local ./alpaca-s3 (here the tiny test model, 64-token buckets) shadows the bundled one.
    writeTinyModel(join(elsewhere, "alpaca-s3"), scheme, 8);
    const local = runCli(["predict", "--model", "alpaca-s3", prompt], { cwd: elsewhere });
    expect(local.code, local.stderr).toBe(0);
    const p = await LengthPredictor.load(model.dir);
    const want = await p.predict(prompt);
    await p.dispose();
    expect(JSON.parse(local.stdout).probabilities).toHaveLength(8);
    expect(JSON.parse(local.stdout)).toMatchObject({ bucket: want.bucket, upperBound: want.upperBound });
    expect(want.upperBound % 64).toBe(0);
  });

  it("reads the prompt from piped stdin when no argument is given", async () => {
    const r = runCli(["predict", "--model", model.dir, "--no-probabilities"], { input: "write a poem about the sea\n" });
    expect(r.code, r.stderr).toBe(0);
    const p = await LengthPredictor.load(model.dir);
    const want = await p.predict("write a poem about the sea\n");
    await p.dispose();
    expect(JSON.parse(r.stdout)).toMatchObject({ bucket: want.bucket, upperBound: want.upperBound });
  });

  it("refuses a huge prompt argument with a clear error and reads long prompts from stdin with -", () => {
    const long = "word ".repeat(8000); // 40k characters: onnxruntime-node crashes with such an argv
    const r = runCli(["predict", "--model", model.dir, long]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/prompt argument is 40000 characters .*stdin/);
    const s = runCli(["predict", "--model", model.dir, "--max-prompt-chars", "40000", "-"], { input: long });
    expect(s.code, s.stderr).toBe(0);
    const got = JSON.parse(s.stdout);
    expect(got.upperBound).toBe(scheme.edges[got.bucket]);
  });
});

