import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { uniformBuckets } from "../src/data/buckets.js";
import { runCli } from "./helpers/cli.js";
import { tinyTokenizerJson } from "./helpers/predictor-fixtures.js";
import { tempDir } from "./helpers/tmp.js";

const root = tempDir("lenpred-train-cli-");
const scheme = uniformBuckets(256, 4);
const words = ["write", "a", "poem", "essay", "list", "short", "long", "the", "about", "sea", "story", "detailed", "one", "word"];

/** A prepared directory whose answer length is decided by the first word (so a model can learn it). */
export function writePrepared(dir: string, n = 64): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "scheme.json"), JSON.stringify({ buckets: scheme, tokenizer: "bert-base-uncased", specialTokens: true, label: "test", template: "{instruction} {input}" }));
  for (const [split, count] of [["train", n], ["val", Math.ceil(n / 4)]] as const) {
    const lines = Array.from({ length: count }, (_, i) => {
      const first = ["list", "write", "essay", "story"][i % 4]!;
      const prompt = [first, ...Array.from({ length: 1 + ((i * 7) % 5) }, (_, j) => words[(i * 3 + j) % words.length])].join(" ");
      const out = (i % 4) * 64 + ((i * 13) % 60);
      return JSON.stringify({ id: `${split}-${i}`, prompt, prompt_tokens: 5, output_tokens: out, output_length_bucket: Math.floor(out / 64) });
    });
    writeFileSync(join(dir, `${split}.jsonl`), lines.join("\n") + "\n");
  }
}

const data = join(root, "data");
writePrepared(data);
const tok = join(root, "tokenizer.json");
writeFileSync(tok, JSON.stringify(tinyTokenizerJson()));

describe("lenpred train: usage errors", () => {
  it("needs --data unless resuming", () => {
    const r = runCli(["train", "--out", join(root, "m1")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--data is required/);
  });
  it("has nothing to resume in an empty directory", () => {
    const r = runCli(["train", "--resume", "--out", join(root, "m2")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/checkpoint\/state\.json: no resumable checkpoint/);
  });
  it("refuses to write into a non-empty directory without --overwrite", () => {
    const out = join(root, "m3");
    mkdirSync(out);
    writeFileSync(join(out, "keep.txt"), "x");
    const r = runCli(["train", "--data", data, "--out", out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/exists and is not empty/);
  });
  it("names a bad prepared directory and bad options", () => {
    expect(runCli(["train", "--data", join(root, "nope"), "--out", join(root, "m4")]).stderr).toMatch(/nope\/scheme\.json: not a prepared data directory/);
    expect(runCli(["train", "--data", data, "--out", join(root, "m5"), "--tokenizer", tok, "--config", "huge"]).stderr).toMatch(/unknown --config 'huge'/);
    expect(runCli(["train", "--data", data, "--out", join(root, "m6"), "--epochs", "0"]).stderr).toMatch(/--epochs must be a positive integer/);
    expect(runCli(["train", "--data", data, "--out", join(root, "m7"), "--lr", "abc"]).stderr).toMatch(/--lr expects a number/);
  });
});
