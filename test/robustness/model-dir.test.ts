/**
 * Model directories are confined and read as regular files only (issue 9, item 15): paths in lenpred.json
 * cannot leave the directory, symlinks cannot point outside it, FIFOs/devices are refused before open (a FIFO
 * lenpred.json used to hang), a symlink loop is named as such, and maxSeqLen is bounded by config.json.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DEFAULT_FEATURES } from "../../src/baselines/ngram/features.js";
import { DEFAULT_TRAIN, trainNgram } from "../../src/baselines/ngram/model.js";
import { uniformBuckets } from "../../src/data/buckets.js";
import type { PreparedScheme } from "../../src/data/records.js";
import { loadPredictor } from "../../src/predictor/load.js";
import { runCli } from "../helpers/cli.js";
import { writeTinyModel } from "../helpers/predictor-fixtures.js";
import { syntheticRecords } from "../helpers/prepared-fixture.js";
import { tempDir } from "../helpers/tmp.js";

const root = tempDir("lenpred-model-dir-");
const buckets = uniformBuckets(512, 4);
const scheme: PreparedScheme = { buckets, tokenizer: "test-words", specialTokens: false, label: "synthetic", template: "{instruction}" };
const isRoot = process.getuid?.() === 0;

/** A fresh copy of a small trained n-gram model directory. */
const ngramDir = join(root, "ngram-src");
const ngramReady = (async () => {
  const p = await trainNgram(syntheticRecords(200, 1), scheme, { ...DEFAULT_TRAIN, epochs: 1, features: { ...DEFAULT_FEATURES, hashBits: 8 } });
  await p.save(ngramDir);
})();
async function ngramCopy(name: string): Promise<string> {
  await ngramReady;
  const d = join(root, name);
  cpSync(ngramDir, d, { recursive: true });
  return d;
}
function patchMeta(dir: string, patch: Record<string, unknown>): void {
  const f = join(dir, "lenpred.json");
  writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, "utf8")), ...patch }));
}

describe("n-gram weightsFile is confined to the model directory", () => {
  it("loads its own weights file", async () => {
    const p = await loadPredictor(await ngramCopy("ok"));
    expect((await p.predict("write a poem")).bucket).toBeGreaterThanOrEqual(0);
  });
  it("refuses a weightsFile leaving the directory (../../../../dev/zero)", async () => {
    const d = await ngramCopy("escape");
    patchMeta(d, { weightsFile: "../../../../dev/zero" });
    await expect(loadPredictor(d)).rejects.toThrow(/field 'weightsFile'.*outside the model directory/);
  });
  it("refuses an absolute weightsFile", async () => {
    const d = await ngramCopy("absolute");
    patchMeta(d, { weightsFile: "/dev/zero" });
    await expect(loadPredictor(d)).rejects.toThrow(/absolute path/);
  });
  it("refuses a weights symlink pointing outside", async () => {
    const d = await ngramCopy("link-out");
    const outside = join(root, "outside.f32");
    cpSync(join(d, "weights.f32"), outside);
    rmSync(join(d, "weights.f32"));
    symlinkSync(outside, join(d, "weights.f32"));
    await expect(loadPredictor(d)).rejects.toThrow(/outside the model directory/);
  });
  it("refuses a FIFO as weights without blocking", async () => {
    const d = await ngramCopy("fifo-weights");
    execFileSync("mkfifo", [join(d, "w.fifo")]);
    patchMeta(d, { weightsFile: "w.fifo" });
    await expect(loadPredictor(d)).rejects.toThrow(/w\.fifo: not a regular file \(a FIFO\)/);
  });
});

describe("lenpred.json and distilbert files", () => {
  it("a FIFO as lenpred.json is refused, not waited on (CLI: one line, exit 2)", () => {
    const d = join(root, "fifo-meta");
    mkdirSync(d);
    execFileSync("mkfifo", [join(d, "lenpred.json")]);
    const r = runCli(["predict", "--model", d, "hello"], { timeoutMs: 30_000 });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/lenpred\.json: not a regular file \(a FIFO\)/);
  });
  it("a model.onnx symlink loop is reported as a loop, not as missing", async () => {
    const d = join(root, "loop");
    writeTinyModel(d, buckets, 4);
    rmSync(join(d, "model.onnx"));
    symlinkSync("model.onnx", join(d, "model.onnx"));
    await expect(loadPredictor(d)).rejects.toThrow(/model\.onnx: is a symlink loop/);
  });
  it("a tokenizer.json symlink leaving the directory is refused", async () => {
    const d = join(root, "tok-out");
    writeTinyModel(d, buckets, 4);
    cpSync(join(d, "tokenizer.json"), join(root, "tok-outside.json"));
    rmSync(join(d, "tokenizer.json"));
    symlinkSync(join(root, "tok-outside.json"), join(d, "tokenizer.json"));
    await expect(loadPredictor(d)).rejects.toThrow(/tokenizer\.json: is a link to .* outside the model directory/);
  });
  it("a hub cache snapshot may link into its repository's blobs/, and nowhere else", async () => {
    const repo = join(root, "hub", "models--acme--tiny");
    const snap = join(repo, "snapshots", "0123abcd");
    const blobs = join(repo, "blobs");
    writeTinyModel(snap, buckets, 4);
    mkdirSync(blobs, { recursive: true });
    // huggingface_hub's layout: every snapshot file is a link to ../../blobs/<etag>.
    cpSync(join(snap, "tokenizer.json"), join(blobs, "tok-etag"));
    rmSync(join(snap, "tokenizer.json"));
    symlinkSync(join("..", "..", "blobs", "tok-etag"), join(snap, "tokenizer.json"));
    await expect(loadPredictor(snap)).resolves.toBeDefined();
    // A link leaving the repository folder is still refused.
    cpSync(join(blobs, "tok-etag"), join(root, "hub", "elsewhere.json"));
    rmSync(join(snap, "tokenizer.json"));
    symlinkSync(join(root, "hub", "elsewhere.json"), join(snap, "tokenizer.json"));
    await expect(loadPredictor(snap)).rejects.toThrow(/tokenizer\.json: is a link to .* outside the model directory/);
  });
  it("a symlink inside the directory is fine", async () => {
    const d = join(root, "link-in");
    writeTinyModel(d, buckets, 4);
    cpSync(join(d, "model.onnx"), join(d, "real.onnx"));
    rmSync(join(d, "model.onnx"));
    symlinkSync("real.onnx", join(d, "model.onnx"));
    const p = await loadPredictor(d);
    await (p as unknown as { dispose(): Promise<void> }).dispose();
  });
  it("a directory named model.onnx is not a model file", async () => {
    const d = join(root, "dir-onnx");
    writeTinyModel(d, buckets, 4);
    rmSync(join(d, "model.onnx"));
    mkdirSync(join(d, "model.onnx"));
    await expect(loadPredictor(d)).rejects.toThrow(/model\.onnx: not a regular file \(a directory\)/);
  });
  it.skipIf(!isRoot)("a character device as lenpred.json is refused (needs root for mknod)", async () => {
    const d = join(root, "chardev");
    mkdirSync(d);
    execFileSync("mknod", [join(d, "lenpred.json"), "c", "1", "5"]); // /dev/zero's numbers
    await expect(loadPredictor(d)).rejects.toThrow(/not a regular file \(a character device\)/);
  });
});

describe("maxSeqLen is validated against the model", () => {
  const withConfig = (name: string, maxSeqLen: unknown, mpe = 64) => {
    const d = join(root, name);
    writeTinyModel(d, buckets, 4, { maxSeqLen });
    writeFileSync(join(d, "config.json"), JSON.stringify({ model_type: "distilbert", max_position_embeddings: mpe }));
    return d;
  };
  it("refuses maxSeqLen above config.json's max_position_embeddings", async () => {
    await expect(loadPredictor(withConfig("seq-big", 4096))).rejects.toThrow(/lenpred\.json, field 'maxSeqLen': 4096 exceeds config\.json's max_position_embeddings 64/);
  });
  it.each([0, 2, 1.5, "512", -1])("refuses maxSeqLen %j", async (v) => {
    await expect(loadPredictor(withConfig(`seq-bad-${String(v)}`, v))).rejects.toThrow(/field 'maxSeqLen'/);
  });
  it("accepts maxSeqLen equal to max_position_embeddings", async () => {
    const p = await loadPredictor(withConfig("seq-eq", 64));
    expect((p as unknown as { maxLength: number }).maxLength).toBe(64);
    await (p as unknown as { dispose(): Promise<void> }).dispose();
  });
});

describe("ensemble members", () => {
  it("refuses a member that is a symlink to a directory outside the ensemble", async () => {
    const member = await ngramCopy("ens-outside-member");
    const d = join(root, "ens");
    mkdirSync(d);
    symlinkSync(member, join(d, "m"));
    writeFileSync(join(d, "lenpred.json"), JSON.stringify({ kind: "ensemble", buckets, tokenizer: "test-words", members: [{ dir: "m" }] }));
    await expect(loadPredictor(d)).rejects.toThrow(/outside the model directory/);
  });
  it("refuses a member naming the ensemble directory itself (endless recursion)", async () => {
    const d = join(root, "ens-self");
    mkdirSync(d);
    writeFileSync(join(d, "lenpred.json"), JSON.stringify({ kind: "ensemble", buckets, tokenizer: "test-words", members: [{ dir: "." }] }));
    await expect(loadPredictor(d)).rejects.toThrow(/members\[0\]\.dir/);
  });
});

describe("config.json beside a distilbert model", () => {
  it("a config.json symlink loop is refused, not skipped (the maxSeqLen bound would be lost)", async () => {
    const d = join(root, "config-loop");
    writeTinyModel(d, buckets, 4, { maxSeqLen: 4096 });
    symlinkSync("config.json", join(d, "config.json"));
    await expect(loadPredictor(d)).rejects.toThrow(/config\.json: is a symlink loop/);
  });
});

describe("lenpred.json ranges", () => {
  it("a majority model's bucket must be a bucket of its scheme", async () => {
    const d = join(root, "majority-range");
    mkdirSync(d);
    writeFileSync(join(d, "lenpred.json"), JSON.stringify({ kind: "majority", buckets, tokenizer: "test-words", bucket: 99, expectedTokens: 10 }));
    await expect(loadPredictor(d)).rejects.toThrow(/field 'bucket': must be a bucket index in 0\.\.3, got 99/);
    writeFileSync(join(d, "lenpred.json"), JSON.stringify({ kind: "majority", buckets, tokenizer: "test-words", bucket: 1, expectedTokens: -5 }));
    await expect(loadPredictor(d)).rejects.toThrow(/field 'expectedTokens'/);
  });
  it("a distilbert model's residualStd must be a non-negative number", async () => {
    const d = join(root, "residual");
    writeTinyModel(d, buckets, 1, { head: "regression", residualStd: -1 });
    await expect(loadPredictor(d)).rejects.toThrow(/field 'residualStd': must be a non-negative number, got -1/);
  });
});
