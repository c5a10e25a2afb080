/**
 * ONNX interop with third-party tools: transformers.js (@huggingface/transformers, local files only) loads lenpred
 * model directories as they are — the committed ones and freshly written ones — and gets lenpred's logits; the
 * opset-17 export matches the opset-20 one, loads back, and passes Debian's ONNX 1.12 checker when installed.
 */
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import ort from "onnxruntime-node";
import { AutoModelForSequenceClassification, AutoTokenizer, env } from "@huggingface/transformers";
import { describe, expect, it } from "vitest";
import { uniformBuckets } from "../src/data/buckets.js";
import { saveModelDir } from "../src/model/checkpoint.js";
import { ONNX_FILE } from "../src/model-dir/index.js";
import { PRESETS, type DistilBertConfig } from "../src/model/config.js";
import { buildInferenceOnnx } from "../src/model/export-onnx.js";
import { DistilBertPredictor } from "../src/predictor/distilbert-predictor.js";
import { LengthPredictor } from "../src/predictor/length-predictor.js";
import { LENPRED_VERSION } from "../src/util/version.js";
import { repoRoot } from "../src/util/paths.js";
import { tokenizerJsonPath } from "../src/tokenizers/index.js";
import { batchOf, lively } from "./helpers/lively-model.js";
import { tempDir } from "./helpers/tmp.js";

env.allowRemoteModels = false; // local files only: nothing may be fetched

const PROMPTS = ["Write a haiku about autumn.", "Explain how TCP congestion control works, step by step, with examples.", "hi"];

/** transformers.js logits for PROMPTS, one prompt per run (no padding), with the ids its tokenizer produced. */
async function transformersJs(parent: string, name: string, dtype: "fp32" | "q8" = "fp32"): Promise<{ ids: number[][]; logits: number[][] }> {
  env.localModelPath = parent;
  const tok = await AutoTokenizer.from_pretrained(name);
  const model = await AutoModelForSequenceClassification.from_pretrained(name, { dtype });
  const ids: number[][] = [];
  const logits: number[][] = [];
  try {
    for (const p of PROMPTS) {
      const enc = await tok(p, { truncation: true });
      ids.push(Array.from(enc.input_ids.data as BigInt64Array, Number));
      logits.push(Array.from((await model(enc)).logits.data as Float32Array));
    }
  } finally {
    await model.dispose();
  }
  return { ids, logits };
}

async function lenpredLogits(dir: string, opts: { int8?: boolean } = {}): Promise<{ ids: number[][]; logits: number[][] }> {
  const p = await DistilBertPredictor.load(dir, { threads: 1, ...opts });
  try {
    const ids = PROMPTS.map((s) => p.encode(s));
    const logits: number[][] = [];
    for (const seq of ids) logits.push(Array.from((await p.outputs([seq])).data));
    return { ids, logits };
  } finally {
    await p.dispose();
  }
}

const maxDiff = (a: number[][], b: number[][]) => Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i]![j]!))));

describe("transformers.js loads lenpred model directories as they are", () => {
  for (const name of ["alpaca-s3", "vicuna-7b"]) {
    it(`models/${name}/distilbert: same token ids, logits within 1e-4 of lenpred's`, async () => {
      const parent = join(repoRoot, "models", name);
      expect(existsSync(join(parent, "distilbert", ONNX_FILE))).toBe(true);
      const theirs = await transformersJs(parent + "/", "distilbert");
      const ours = await lenpredLogits(join(parent, "distilbert"));
      expect(theirs.ids).toEqual(ours.ids);
      expect(maxDiff(theirs.logits, ours.logits)).toBeLessThan(1e-4);
    });
  }

  it("a directory saveModelDir writes (classification head, F32) loads too", async () => {
    const root = tempDir("lenpred-tjs-");
    const c: DistilBertConfig = { ...PRESETS.tiny!, vocab_size: 30522, dim: 32, n_layers: 2, n_heads: 4, hidden_dim: 48, max_position_embeddings: 64, num_labels: 4 };
    await saveModelDir(join(root, "m"), {
      config: c, params: lively(c, 5), tokenizerJsonPath: await tokenizerJsonPath("bert-base-uncased"),
      meta: { buckets: uniformBuckets(512, 4), tokenizer: "bert-base-uncased", maxSeqLen: 64 },
    });
    expect(existsSync(join(root, "m", "onnx", "model.onnx"))).toBe(true);
    const theirs = await transformersJs(root + "/", "m");
    const ours = await lenpredLogits(join(root, "m"));
    expect(theirs.ids).toEqual(ours.ids);
    expect(theirs.logits[0]).toHaveLength(4);
    expect(Math.max(...ours.logits.flat().map(Math.abs))).toBeGreaterThan(0.1); // logits are not all ≈ 0
    expect(maxDiff(theirs.logits, ours.logits)).toBeLessThan(1e-4);
  });
});

describe("the int8 export is onnx/model_quantized.onnx, transformers.js's dtype q8", () => {
  const root = tempDir("lenpred-tjs-q8-");
  const c: DistilBertConfig = { ...PRESETS.tiny!, vocab_size: 30522, dim: 32, n_layers: 2, n_heads: 4, hidden_dim: 48, max_position_embeddings: 64, num_labels: 4 };
  const fresh = join(root, "m");
  const written = (async () => {
    await saveModelDir(fresh, {
      config: c, params: lively(c, 9), tokenizerJsonPath: await tokenizerJsonPath("bert-base-uncased"), onnxInt8: true,
      meta: { buckets: uniformBuckets(512, 4), tokenizer: "bert-base-uncased", maxSeqLen: 64 },
    });
  })();
  /** A copy of the fresh directory in the layout written before 2026-11-30: ./model.int8.onnx, recorded as such. */
  const oldLayout = async (name: string, recordInMeta = true): Promise<string> => {
    await written;
    const dir = join(root, name);
    cpSync(fresh, dir, { recursive: true });
    renameSync(join(dir, "onnx", "model_quantized.onnx"), join(dir, "model.int8.onnx"));
    const meta = JSON.parse(readFileSync(join(dir, "lenpred.json"), "utf8"));
    if (recordInMeta) meta.onnxInt8 = "model.int8.onnx";
    else delete meta.onnxInt8;
    writeFileSync(join(dir, "lenpred.json"), JSON.stringify(meta));
    return dir;
  };

  it("transformers.js loads it with dtype q8 and gets lenpred's int8 logits (within 1e-4)", async () => {
    await written;
    expect(JSON.parse(readFileSync(join(fresh, "lenpred.json"), "utf8")).onnxInt8).toBe("onnx/model_quantized.onnx");
    const theirs = await transformersJs(root + "/", "m", "q8");
    const ours = await lenpredLogits(fresh, { int8: true });
    const float = await lenpredLogits(fresh);
    expect(theirs.ids).toEqual(ours.ids);
    expect(Math.max(...ours.logits.flat().map(Math.abs))).toBeGreaterThan(0.1); // logits are not all ≈ 0
    expect(maxDiff(theirs.logits, ours.logits)).toBeLessThan(1e-4);
    // Both ran the quantized graph, not model.onnx: the float export's logits are much further away.
    expect(maxDiff(float.logits, ours.logits)).toBeGreaterThan(1e-3);
  });

  it("a directory with the old flat model.int8.onnx still loads in lenpred (same logits); transformers.js does not find it", async () => {
    await written;
    const ours = await lenpredLogits(fresh, { int8: true });
    for (const [name, recorded] of [["old", true], ["old-unrecorded", false]] as const) {
      const dir = await oldLayout(name, recorded);
      expect(existsSync(join(dir, "onnx", "model_quantized.onnx"))).toBe(false);
      expect((await lenpredLogits(dir, { int8: true })).logits).toEqual(ours.logits);
    }
    await expect(transformersJs(root + "/", "old", "q8")).rejects.toThrow(/model_quantized\.onnx/);
    // The library API passes the option through: the old directory's int8 predictions, not the float ones.
    const lp = await LengthPredictor.load(join(root, "old"), { int8: true, threads: 1 });
    const dp = await DistilBertPredictor.load(fresh, { int8: true, threads: 1 });
    const fp = await DistilBertPredictor.load(fresh, { threads: 1 });
    try {
      const got = await lp.predictBatch(PROMPTS);
      expect(got).toEqual(await dp.predictBatch(PROMPTS));
      expect(got.map((p) => p.probabilities)).not.toEqual((await fp.predictBatch(PROMPTS)).map((p) => p.probabilities));
    } finally {
      await Promise.all([lp.dispose(), dp.dispose(), fp.dispose()]);
    }
  });

  it("asking for int8 where there is none, or where lenpred.json names a missing file, is a LenpredError", async () => {
    await written;
    const none = join(root, "none");
    cpSync(fresh, none, { recursive: true });
    rmSync(join(none, "onnx", "model_quantized.onnx"));
    const meta = JSON.parse(readFileSync(join(none, "lenpred.json"), "utf8"));
    writeFileSync(join(none, "lenpred.json"), JSON.stringify({ ...meta, onnxInt8: undefined }));
    await expect(DistilBertPredictor.load(none, { int8: true })).rejects.toThrow(/has no int8 export \(onnx\/model_quantized\.onnx, nor model\.int8\.onnx\)/);
    expect((await lenpredLogits(none)).logits).toEqual((await lenpredLogits(fresh)).logits); // the float export is unaffected
    writeFileSync(join(none, "lenpred.json"), JSON.stringify(meta)); // records onnx/model_quantized.onnx, which is gone
    await expect(DistilBertPredictor.load(none, { int8: true })).rejects.toThrow(/missing from the model directory \(lenpred.json's onnxInt8 names it\)/);
  });
});

describe("opset 17 export", () => {
  const TINY: DistilBertConfig = { ...PRESETS.tiny!, vocab_size: 60, dim: 32, n_layers: 2, n_heads: 4, hidden_dim: 48, max_position_embeddings: 24, num_labels: 5 };
  const params = lively(TINY, 21);
  const dir = tempDir("lenpred-opset-");
  const o20 = buildInferenceOnnx(TINY, params);
  const o17 = buildInferenceOnnx(TINY, params, { opset: 17 });
  const has = (bytes: Uint8Array, s: string) => Buffer.from(bytes).includes(Buffer.from(s));

  it("decomposes Gelu, declares IR 8, and names its producer and version", () => {
    expect(has(o20, "Gelu")).toBe(true);
    expect(has(o17, "Gelu")).toBe(false);
    expect(has(o17, "Erf")).toBe(true);
    // ModelProto field 1 (ir_version) is the first varint.
    expect([o20[0], o20[1]]).toEqual([0x08, 9]);
    expect([o17[0], o17[1]]).toEqual([0x08, 8]);
    for (const o of [o17, o20]) {
      expect(has(o, "lenpred")).toBe(true);
      expect(has(o, LENPRED_VERSION)).toBe(true);
    }
    expect(() => buildInferenceOnnx(TINY, params, { opset: 18 as never })).toThrow(/opset 18 is not supported/);
  });

  it("gives the opset-20 logits (padded batch, onnxruntime) and loads back as a lenpred model", async () => {
    const b = batchOf([9, 4, 6], 9, TINY.vocab_size, 8);
    const feeds = {
      input_ids: new ort.Tensor("int64", b.inputIds, [b.batch, b.seqLen]),
      attention_mask: new ort.Tensor("int64", b.attentionMask, [b.batch, b.seqLen]),
    };
    const run = async (bytes: Uint8Array) => {
      const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
      try { return Array.from((await s.run(feeds)).logits!.data as Float32Array); } finally { await s.release(); }
    };
    const [l20, l17] = [await run(o20), await run(o17)];
    expect(Math.max(...l20.map(Math.abs))).toBeGreaterThan(0.5);
    expect(maxDiff([l17], [l20])).toBeLessThan(1e-5);

    const c: DistilBertConfig = { ...TINY, vocab_size: 30522, max_position_embeddings: 64 };
    const p = lively(c, 3);
    const meta = { buckets: uniformBuckets(500, 5), tokenizer: "bert-base-uncased", maxSeqLen: 64 };
    await saveModelDir(join(dir, "m20"), { config: c, params: p, tokenizerJsonPath: await tokenizerJsonPath("bert-base-uncased"), meta });
    await saveModelDir(join(dir, "m17"), { config: c, params: p, tokenizerJsonPath: await tokenizerJsonPath("bert-base-uncased"), meta, opset: 17 });
    expect(JSON.parse(readFileSync(join(dir, "m17", "lenpred.json"), "utf8")).onnxOpset).toBe(17);
    const [a, z] = [await lenpredLogits(join(dir, "m17")), await lenpredLogits(join(dir, "m20"))];
    expect(maxDiff(a.logits, z.logits)).toBeLessThan(1e-5);
  });

  const debianPython = "/usr/bin/python3";
  const checker = existsSync(debianPython) && spawnSync(debianPython, ["-c", "import onnx"]).status === 0;
  it.skipIf(!checker)("passes the ONNX checker of Debian's python3-onnx (skipped when not installed: apt-get install python3-onnx)", () => {
    const file17 = join(dir, "check17.onnx");
    const file20 = join(dir, "check20.onnx");
    writeFileSync(file17, o17);
    writeFileSync(file20, o20);
    const check = (f: string) => spawnSync(debianPython, ["-c", "import onnx,sys; m=onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); print(onnx.__version__, m.producer_name, m.producer_version, m.opset_import[0].version)", f], { encoding: "utf8" });
    const ok = check(file17);
    expect(ok.status, ok.stderr).toBe(0);
    const [version, producer, producerVersion, opset] = ok.stdout.trim().split(" ");
    expect([producer, producerVersion, opset]).toEqual(["lenpred", LENPRED_VERSION, "17"]);
    // The reason --opset 17 exists: an ONNX ≤ 1.13 checker refuses the default export.
    if (/^1\.1[0-3]\./.test(version!)) expect(check(file20).status).not.toBe(0);
  });
});
