/**
 * Model sizes are validated before anything is allocated (issue 9, item 13): a config with n_layers 1e6 used to
 * allocate without bound (13 GB) and `dim: 1e9` died with "Invalid typed array length"; an --init directory
 * whose weights lack tensors is refused from the safetensors header, before the weights are read.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hfConfigJson, loadModelDir } from "../../src/model/checkpoint.js";
import { checkModelSize, estimateMemoryBytes, parameterCount, parseConfig, PRESETS } from "../../src/model/config.js";
import { countParams, initParams } from "../../src/model/params.js";
import { writeSafetensors } from "../../src/model/safetensors.js";
import { runCli } from "../helpers/cli.js";
import { tinyTokenizerJson } from "../helpers/predictor-fixtures.js";
import { tempDir } from "../helpers/tmp.js";
import { syntheticRecords, writePrepared } from "../helpers/prepared-fixture.js";

const root = tempDir("lenpred-config-limits-");
const data = join(root, "data");
writePrepared(data, { train: syntheticRecords(16, 1), val: syntheticRecords(4, 2) });
const tok = join(root, "tokenizer.json");
writeFileSync(tok, JSON.stringify(tinyTokenizerJson()));
const GB = 2 ** 30;
const small = parseConfig({ vocab_size: 20, dim: 16, n_layers: 2, n_heads: 2, hidden_dim: 32, max_position_embeddings: 32, num_labels: 4 });

function train(args: string[]) {
  return runCli(["train", "--data", data, "--tokenizer", tok, "--epochs", "1", "--no-progress", ...args], { timeoutMs: 60_000 });
}

describe("size estimates", () => {
  it("count parameters in closed form, equal to the per-tensor count", () => {
    for (const c of [...Object.values(PRESETS), small]) expect(parameterCount(c)).toBe(countParams(c));
  });
  it("let the presets train on a 16 GB machine and refuse absurd configs", () => {
    for (const c of Object.values(PRESETS)) expect(() => checkModelSize(c, { maxBytes: 16 * GB, training: { batchSize: 16, seqLen: 512 } })).not.toThrow();
    expect(() => checkModelSize({ ...small, n_layers: 1_000_000 }, { maxBytes: 16 * GB })).toThrow(/1000000 layers .* parameters need about .* GB to load, more than the 16\.0 GB allowed/);
    expect(() => checkModelSize({ ...small, dim: 1e9, n_heads: 8 }, { maxBytes: 1e20 })).toThrow(/field 'vocab_size': vocab_size 20 × dim 1000000000 gives a .* weight matrix; one tensor is limited to 2 GB/);
  });
  it("grows with batch and sequence length when training", () => {
    const a = estimateMemoryBytes(PRESETS.tiny!, { batchSize: 8, seqLen: 128 });
    expect(estimateMemoryBytes(PRESETS.tiny!, { batchSize: 16, seqLen: 128 })).toBeGreaterThan(a);
    expect(estimateMemoryBytes(PRESETS.tiny!, { batchSize: 8, seqLen: 256 })).toBeGreaterThan(a);
    expect(estimateMemoryBytes(PRESETS.tiny!)).toBeLessThan(a);
  });
});

describe("lenpred train refuses oversized models before allocating (exit 2, one line)", () => {
  it("--config with n_layers 1000000", () => {
    const cfg = join(root, "huge-layers.json");
    writeFileSync(cfg, JSON.stringify({ dim: 128, n_heads: 2, hidden_dim: 512, n_layers: 1_000_000 }));
    const r = train(["--config", cfg, "--out", join(root, "m-layers")]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/huge-layers\.json: 1000000 layers × dim 128 .* parameters need about [\d.]+ (GB|TB) to train \(batch 16 × 512 tokens\).*--max-memory/);
  });
  it("--config with dim 1e9", () => {
    const cfg = join(root, "huge-dim.json");
    writeFileSync(cfg, JSON.stringify({ dim: 1e9, n_heads: 8 }));
    const r = train(["--config", cfg, "--out", join(root, "m-dim")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/huge-dim\.json, field 'vocab_size': vocab_size 20 × dim 1000000000 gives a .* weight matrix/);
    expect(r.stderr).not.toMatch(/unexpected error|Invalid typed array length/);
  });
  it("--max-memory caps the estimate (a preset over a tiny cap is refused)", () => {
    const r = train(["--config", "tiny", "--max-memory", "0.01", "--out", join(root, "m-cap")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/need about [\d.]+ MB to train .* more than the 10\.2 MB allowed; raise it with --max-memory/);
  });
  it("--init whose config.json says n_layers 1000000", async () => {
    const init = join(root, "init-huge");
    mkdirSync(init);
    writeFileSync(join(init, "config.json"), JSON.stringify({ ...hfConfigJson(small), n_layers: 1_000_000 }));
    await writeSafetensors(join(init, "model.safetensors"), initParams(small, 1));
    const r = train(["--init", init, "--out", join(root, "m-init")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/init-huge\/config\.json: 1000000 layers .* need about/);
  });
});

describe("--init has every tensor, checked from the header before the weights are read", () => {
  it("names the first missing tensor", async () => {
    const init = join(root, "init-missing");
    mkdirSync(init);
    writeFileSync(join(init, "config.json"), JSON.stringify({ ...hfConfigJson(small), n_layers: 3 }));
    await writeSafetensors(join(init, "model.safetensors"), initParams(small, 1));
    await expect(loadModelDir(init, { requireMeta: false })).rejects.toThrow(/model\.safetensors, field 'distilbert\.transformer\.layer\.2\.attention\.q_lin\.weight': missing parameter .*config\.json and the weights disagree/);
  });
});
