/**
 * One prompt-size limit for library, CLI and server (issue 9, item 14): `predict -` stops reading stdin as soon as
 * the prompt is certainly too long (`/dev/zero` used to be read without end), and the limit is configurable.
 */
import { openSync, closeSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { trainMajority } from "../../src/baselines/constant.js";
import { uniformBuckets } from "../../src/data/buckets.js";
import type { PreparedScheme } from "../../src/data/records.js";
import { checkPrompt, DEFAULT_MAX_PROMPT_CHARS, LengthPredictor } from "../../src/predictor/length-predictor.js";
import { DEFAULT_LIMITS } from "../../src/serve/limits.js";
import { spawnSync } from "node:child_process";
import { repoRoot } from "../../src/util/paths.js";
import { runCli } from "../helpers/cli.js";
import { syntheticRecords } from "../helpers/prepared-fixture.js";
import { tempDir } from "../helpers/tmp.js";

const root = tempDir("lenpred-prompt-limit-");
const buckets = uniformBuckets(512, 4);
const scheme: PreparedScheme = { buckets, tokenizer: "test-words", specialTokens: false, label: "synthetic", template: "{instruction}" };
const model = join(root, "majority");
const ready = trainMajority(syntheticRecords(50, 1), scheme).save(model);

describe("the library limit", () => {
  it("is the server's default", () => {
    expect(DEFAULT_MAX_PROMPT_CHARS).toBe(32_768);
    expect(DEFAULT_LIMITS.maxPromptChars).toBe(DEFAULT_MAX_PROMPT_CHARS);
  });
  it("LengthPredictor refuses a prompt over the default limit and accepts one at it", async () => {
    await ready;
    const p = await LengthPredictor.load(model);
    expect(p.maxPromptChars).toBe(DEFAULT_MAX_PROMPT_CHARS);
    await expect(p.predict("a".repeat(DEFAULT_MAX_PROMPT_CHARS + 1))).rejects.toThrow(/field 'prompt': prompt is longer than 32768 characters/);
    await expect(p.predictBatch(["ok", "b".repeat(50_000_000)])).rejects.toThrow(/field 'prompts\[1\]'/);
    expect((await p.predict("a".repeat(DEFAULT_MAX_PROMPT_CHARS))).bucket).toBeGreaterThanOrEqual(0);
  });
  it("counts characters as code points (an emoji is one character, two UTF-16 units)", () => {
    expect(() => checkPrompt("😀".repeat(10), "prompt", {}, 10)).not.toThrow();
    expect(() => checkPrompt("😀".repeat(11), "prompt", {}, 10)).toThrow(/longer than 10 characters/);
  });
  it("is configurable per predictor (maxPromptChars)", async () => {
    await ready;
    const p = await LengthPredictor.load(model, { maxPromptChars: 10 });
    await expect(p.predict("x".repeat(11))).rejects.toThrow(/longer than 10 characters/);
    const big = await LengthPredictor.load(model, { maxPromptChars: 100_000 });
    expect((await big.predict("x".repeat(60_000))).bucket).toBeGreaterThanOrEqual(0);
    await expect(LengthPredictor.load(model, { maxPromptChars: 0 })).rejects.toThrow(/maxPromptChars/);
  });
});

describe("lenpred predict", () => {
  it("stops reading stdin once the prompt is over the limit (/dev/zero ends at once, exit 2)", async () => {
    await ready;
    const zero = openSync("/dev/zero", "r");
    try {
      const r = spawnSync(process.execPath, ["--import", "tsx", join(repoRoot, "src", "cli.ts"), "predict", "--model", model, "-"], {
        cwd: repoRoot, stdio: [zero, "pipe", "pipe"], encoding: "utf8", timeout: 60_000,
      });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/longer than 32768 characters.*--max-prompt-chars/);
    } finally {
      closeSync(zero);
    }
  });
  it("refuses a long stdin prompt and accepts it with --max-prompt-chars", async () => {
    await ready;
    const input = "tell me a story ".repeat(4000); // 64,000 characters
    const refused = runCli(["predict", "--model", model, "-"], { input });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/longer than 32768 characters/);
    const ok = runCli(["predict", "--model", model, "--max-prompt-chars", "70000", "-"], { input });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).upperBound).toBeGreaterThan(0);
  });
  it("applies the limit to the prompt argument", async () => {
    await ready;
    const r = runCli(["predict", "--model", model, "--max-prompt-chars", "5", "a long prompt"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/field 'prompt': prompt is longer than 5 characters/);
  });
  it("applies the limit to --file records, naming the record", async () => {
    await ready;
    const f = join(root, "prompts.jsonl");
    writeFileSync(f, [JSON.stringify({ prompt: "short one" }), JSON.stringify({ prompt: "y".repeat(40_000) })].join("\n") + "\n");
    const r = runCli(["predict", "--model", model, "--file", f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/prompts\.jsonl, record 1, field 'prompt': prompt is longer than 32768 characters/);
    expect(runCli(["predict", "--model", model, "--max-prompt-chars", "40000", "--file", f]).code).toBe(0);
  });
});

describe("lenpred serve --max-prompt-chars", () => {
  it("raises the limit of the predictor too (a prompt above the default is predicted, one above the flag is a 400)", async () => {
    await ready;
    const { spawn } = await import("node:child_process");
    const child = spawn(process.execPath, ["--import", "tsx", join(repoRoot, "src", "cli.ts"), "serve", "--model", model, "--port", "0", "--max-prompt-chars", "40000", "--body-limit", "200000"], { cwd: repoRoot });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        // stdout is pino JSON lines; "ready" (with the address) is logged once the model is loaded.
        const onData = () => {
          const m = /"address":"(http:\/\/[^"]+)"[^\n]*"msg":"ready"/.exec(out);
          if (m) resolve(m[1]!);
        };
        child.stdout!.on("data", onData);
        child.on("exit", () => reject(new Error(`serve exited:\n${out}`)));
      });
      const post = (prompt: string) => fetch(`${url}/v1/predict`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt }) });
      const ok = await post("z".repeat(DEFAULT_MAX_PROMPT_CHARS + 1000));
      expect(ok.status, await ok.clone().text()).toBe(200);
      expect((await ok.json()).upperBound).toBeGreaterThan(0);
      expect((await post("z".repeat(40_001))).status).toBe(400);
    } finally {
      child.kill("SIGTERM");
    }
  });
});
