import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { uniformBuckets } from "../src/data/buckets.js";
import { runCli, trainInterruptedAtFirstStep } from "./helpers/cli.js";
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
    const badLr = runCli(["train", "--data", data, "--out", join(root, "m7"), "--lr", "abc"]);
    expect(badLr.stderr).toMatch(/^lenpred: error: --lr expects a number, got 'abc'/);
    expect(badLr.code).toBe(2);
  });
});

describe("lenpred train: end to end on a micro DistilBERT", () => {
  const config = join(root, "micro.json");
  // Dropout on: its masks are hashed from (--seed, step), so an interrupted + resumed run must still equal an
  // uninterrupted one bit for bit.
  writeFileSync(config, JSON.stringify({ dim: 16, n_layers: 1, n_heads: 2, hidden_dim: 32, max_position_embeddings: 32, dropout: 0.1, attention_dropout: 0.1, seq_classif_dropout: 0.2 }));
  const common = ["--data", data, "--tokenizer", tok, "--config", config, "--epochs", "3", "--lr", "0.01", "--batch-size", "4", "--max-length", "16", "--checkpoint-minutes", "0", "--no-progress"];

  it("trains, reports every epoch, writes a loadable model directory that lenpred predict uses", async () => {
    const out = join(root, "e2e");
    const r = runCli(["train", ...common, "--out", out]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout.match(/^epoch \d\/3: train_loss [\d.]+ val_loss [\d.]+ acc [\d.]+% mae [\d.]+ acc50 [\d.]+% under [\d.]+%/gm)).toHaveLength(3);
    const { readdirSync, readFileSync } = await import("node:fs");
    expect(readdirSync(out)).toEqual(expect.arrayContaining(["lenpred.json", "config.json", "model.safetensors", "onnx", "tokenizer.json", "training.json"]));
    expect(readdirSync(join(out, "onnx"))).toEqual(["model.onnx"]); // the transformers.js layout
    expect(readdirSync(out)).not.toContain("checkpoint");
    const card = readFileSync(join(out, "README.md"), "utf8");
    expect(card).toContain("DistilBertForSequenceClassification: 1 layers, dim 16, 2 heads, FFN 32, vocabulary 20, trained from scratch");
    expect(card).toContain("buckets (upper edges, tokens): 64, 128, 192, 256");
    const meta = JSON.parse(readFileSync(join(out, "lenpred.json"), "utf8"));
    expect(meta).toMatchObject({ kind: "distilbert", head: "classification", maxSeqLen: 16, buckets: scheme });
    const p = runCli(["predict", "--model", out, "write a poem about the sea"]);
    expect(p.code, p.stderr).toBe(0);
    expect(JSON.parse(p.stdout).probabilities).toHaveLength(4);

    // --init continues from those weights (and takes the tokenizer from that directory).
    const init = runCli(["train", "--data", data, "--init", out, "--out", join(root, "from-init"), "--epochs", "1", "--batch-size", "4", "--max-length", "16", "--lr", "0.001", "--no-progress", "--opset", "17"]);
    expect(init.code, init.stderr + init.stdout).toBe(0);
    // --opset 17: the export has no Gelu op (decomposed) and says so in lenpred.json.
    expect(JSON.parse(readFileSync(join(root, "from-init", "lenpred.json"), "utf8")).onnxOpset).toBe(17);
    expect(readFileSync(join(root, "from-init", "onnx", "model.onnx")).includes("Gelu")).toBe(false);
    expect(init.stdout).toMatch(/model: .*e2e \(pretrained\): 1 layers × dim 16/);
    expect(readFileSync(join(root, "from-init", "tokenizer.json"), "utf8")).toBe(readFileSync(tok, "utf8"));
  });

  it("Ctrl-C leaves a resumable checkpoint; --resume reproduces the uninterrupted model exactly", async () => {
    const { readFileSync, existsSync } = await import("node:fs");
    const ref = join(root, "ref");
    expect(runCli(["train", ...common, "--out", ref]).code).toBe(0);
    const out = join(root, "interrupted");
    // With progress on and no TTY, the first step prints "  step 1/N …": interrupted there (mid-epoch 1).
    const code = await trainInterruptedAtFirstStep([...common, "--out", out]);
    expect(code).toBe(130);
    expect(existsSync(join(out, "checkpoint", "state.json"))).toBe(true);
    const state = JSON.parse(readFileSync(join(out, "checkpoint", "state.json"), "utf8"));
    expect(state.status).toBe("interrupted");
    expect(state.globalStep).toBeLessThan(state.totalSteps);
    const changed = runCli(["train", "--resume", "--out", out, "--lr", "0.5"]);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toMatch(/--lr 0\.5 differs from the checkpoint's 0\.01/);
    const r = runCli(["train", "--resume", "--out", out, "--no-progress"]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/resuming at epoch/);
    expect(readFileSync(join(out, "model.safetensors"))).toEqual(readFileSync(join(ref, "model.safetensors")));
    // A finished run has nothing left to resume.
    expect(runCli(["train", "--resume", "--out", out]).stderr).toMatch(/no resumable checkpoint/);
  });
});
