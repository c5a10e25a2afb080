import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { uniformBuckets } from "../src/data/buckets.js";
import { hfConfigJson, loadModelDir, saveModelDir } from "../src/model/checkpoint.js";
import { PRESETS, type DistilBertConfig } from "../src/model/config.js";
import { f16BitsToF32, f32ToF16Bits } from "../src/model/half.js";
import { countParams, initParams, paramSpecs } from "../src/model/params.js";
import { writeSafetensors } from "../src/model/safetensors.js";
import { numel, type NamedTensors } from "../src/engine/tensors.js";
import { LenpredError } from "../src/util/errors.js";
import { tempDir } from "./helpers/tmp.js";

const TINY: DistilBertConfig = {
  ...PRESETS.tiny!, vocab_size: 50, dim: 16, n_layers: 2, n_heads: 2, hidden_dim: 24, max_position_embeddings: 20, num_labels: 4,
};
const BUCKETS = uniformBuckets(400, 4);
const META = { buckets: BUCKETS, tokenizer: "bert-base-uncased" };

function writeTokenizerFixture(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "tokenizer.json");
  writeFileSync(file, JSON.stringify({ version: "1.0", model: { type: "WordPiece", vocab: { "[PAD]": 0, "[UNK]": 1 } } }));
  writeFileSync(join(dir, "vocab.txt"), "[PAD]\n[UNK]\n");
  return file;
}

async function expectLenpredError(p: Promise<unknown>, re: RegExp): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(LenpredError);
  expect((err as Error).message).toMatch(re);
}

describe("parameters", () => {
  it("have HF names and PyTorch shapes, and distilbert-base has 66,955,010 parameters with 2 labels", () => {
    const specs = new Map(paramSpecs(TINY).map((s) => [s.name, s.shape]));
    expect(specs.get("distilbert.embeddings.word_embeddings.weight")).toEqual([50, 16]);
    expect(specs.get("distilbert.transformer.layer.1.attention.q_lin.weight")).toEqual([16, 16]);
    expect(specs.get("distilbert.transformer.layer.0.ffn.lin1.weight")).toEqual([24, 16]); // [out, in]
    expect(specs.get("distilbert.transformer.layer.0.ffn.lin2.weight")).toEqual([16, 24]);
    expect(specs.get("distilbert.transformer.layer.0.sa_layer_norm.bias")).toEqual([16]);
    expect(specs.get("distilbert.transformer.layer.0.output_layer_norm.weight")).toEqual([16]);
    expect(specs.get("classifier.weight")).toEqual([4, 16]);
    expect(specs.has("distilbert.transformer.layer.2.attention.q_lin.weight")).toBe(false);
    expect(specs.size).toBe(4 + 2 * 16 + 4);
    // The number HF prints for DistilBertForSequenceClassification(distilbert-base-uncased, num_labels=2).
    expect(countParams({ ...PRESETS.base!, num_labels: 2 })).toBe(66_955_010);
  });

  it("are initialised like HF, deterministically per seed", () => {
    const a = initParams(TINY, 7);
    const b = initParams(TINY, 7);
    const c = initParams(TINY, 8);
    const q = "distilbert.transformer.layer.0.attention.q_lin.weight";
    expect([...a.get(q)!.data]).toEqual([...b.get(q)!.data]);
    expect([...a.get(q)!.data]).not.toEqual([...c.get(q)!.data]);
    expect([...a.get("distilbert.embeddings.LayerNorm.weight")!.data].every((v) => v === 1)).toBe(true);
    expect([...a.get("classifier.bias")!.data].every((v) => v === 0)).toBe(true);
    // Padding row of the word embeddings is zero, the others are not.
    const we = a.get("distilbert.embeddings.word_embeddings.weight")!.data;
    expect([...we.subarray(0, 16)].every((v) => v === 0)).toBe(true);
    expect([...we.subarray(16, 32)].some((v) => v !== 0)).toBe(true);
    // normal(0, 0.02): check the moments over all the normal-initialised weights.
    const big = initParams({ ...TINY, vocab_size: 2000 }, 1).get("distilbert.embeddings.word_embeddings.weight")!.data.subarray(16);
    const mean = big.reduce((s, v) => s + v, 0) / big.length;
    const std = Math.sqrt(big.reduce((s, v) => s + (v - mean) ** 2, 0) / big.length);
    expect(Math.abs(mean)).toBeLessThan(0.001);
    expect(std).toBeGreaterThan(0.0195);
    expect(std).toBeLessThan(0.0205);
  });
});

describe("model directories", () => {
  const root = tempDir();
  const tokenizer = writeTokenizerFixture(join(root, "tok"));

  it("save writes the HF layout and load returns the same model", async () => {
    const dir = join(root, "m32");
    const params = initParams(TINY, 3);
    await saveModelDir(dir, { config: TINY, params, meta: { ...META, maxSeqLen: 20 }, tokenizerJsonPath: tokenizer, onnx: false });
    expect(readdirSync(dir).sort()).toEqual(["config.json", "lenpred.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt"]);
    const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    expect(cfg.architectures).toEqual(["DistilBertForSequenceClassification"]);
    expect(cfg.model_type).toBe("distilbert");
    expect(cfg.id2label).toEqual({ 0: "0-99", 1: "100-199", 2: "200-299", 3: "300+" });
    expect(cfg.label2id["300+"]).toBe(3);
    expect(cfg).toMatchObject({ dim: 16, n_layers: 2, n_heads: 2, hidden_dim: 24, vocab_size: 50, max_position_embeddings: 20, activation: "gelu", sinusoidal_pos_embds: false });
    const meta = JSON.parse(readFileSync(join(dir, "lenpred.json"), "utf8"));
    expect(meta).toMatchObject({ kind: "distilbert", tokenizer: "bert-base-uncased", head: "classification", maxSeqLen: 20, weightsDtype: "F32" });
    // HF refuses safetensors without metadata format "pt".
    const st = readFileSync(join(dir, "model.safetensors"));
    const header = JSON.parse(st.subarray(8, 8 + Number(st.readBigUInt64LE(0))).toString());
    expect(header.__metadata__).toEqual({ format: "pt" });
    expect(header["distilbert.transformer.layer.1.ffn.lin1.weight"]).toMatchObject({ dtype: "F32", shape: [24, 16] });

    const loaded = await loadModelDir(dir);
    expect(loaded.config).toMatchObject({ dim: 16, n_layers: 2, num_labels: 4, head: "classification" });
    expect(loaded.meta.buckets).toEqual(BUCKETS);
    expect(loaded.params.size).toBe(params.size);
    for (const [k, t] of params) expect(Buffer.from(loaded.params.get(k)!.data.buffer).equals(Buffer.from(t.data.buffer))).toBe(true);
    expect(loaded.unusedKeys).toEqual([]);
  });

  it("F16 storage halves the file and loads the float16-rounded values", async () => {
    const dir32 = join(root, "m32");
    const dir = join(root, "m16");
    const params = initParams(TINY, 3);
    await saveModelDir(dir, { config: TINY, params, meta: META, dtype: "F16", onnx: false });
    const s16 = readFileSync(join(dir, "model.safetensors")).length;
    const s32 = readFileSync(join(dir32, "model.safetensors")).length;
    const n = [...params.values()].reduce((a, t) => a + t.data.length, 0);
    expect(s32 - s16).toBeGreaterThanOrEqual(2 * n - 64); // 2 bytes per value saved (headers differ only in dtype text)
    expect(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).torch_dtype).toBe("float16");
    const loaded = await loadModelDir(dir);
    const w = params.get("pre_classifier.weight")!.data;
    const got = loaded.params.get("pre_classifier.weight")!.data;
    for (let i = 0; i < w.length; i++) expect(got[i]).toBe(f16BitsToF32(f32ToF16Bits(w[i]!)));
  });

  it("regression and quantile heads round-trip through config.json", async () => {
    const reg: DistilBertConfig = { ...TINY, head: "regression", num_labels: 1 };
    await saveModelDir(join(root, "reg"), { config: reg, params: initParams(reg, 1), meta: META, onnx: false });
    const r = await loadModelDir(join(root, "reg"));
    expect(r.config.head).toBe("regression");
    expect(JSON.parse(readFileSync(join(root, "reg", "config.json"), "utf8")).problem_type).toBe("regression");
    const qc: DistilBertConfig = { ...TINY, head: "quantile", num_labels: 3, quantiles: [0.1, 0.5, 0.9] };
    await saveModelDir(join(root, "q"), { config: qc, params: initParams(qc, 1), meta: META, onnx: false });
    const q = await loadModelDir(join(root, "q"));
    expect(q.config.quantiles).toEqual([0.1, 0.5, 0.9]);
    expect(JSON.parse(readFileSync(join(root, "q", "config.json"), "utf8")).id2label).toEqual({ 0: "q0.1", 1: "q0.5", 2: "q0.9" });
    await expectLenpredError(saveModelDir(join(root, "badb"), { config: TINY, params: initParams(TINY, 1), meta: { ...META, buckets: uniformBuckets(500, 5) }, onnx: false }), /field 'buckets'.*5 buckets but the config has 4 labels/);
    await expectLenpredError(saveModelDir(join(root, "badq"), { config: { ...qc, quantiles: [0.5] }, params: initParams(qc, 1), meta: META, onnx: false }), /quantiles/);
  });

  it("a failed save leaves the previous directory untouched and no temporary files", async () => {
    const dir = join(root, "m32");
    const before = readFileSync(join(dir, "model.safetensors"));
    const params = initParams(TINY, 4);
    params.delete("classifier.bias");
    await expectLenpredError(saveModelDir(dir, { config: TINY, params, meta: META, onnx: false }), /classifier\.bias/);
    expect(readFileSync(join(dir, "model.safetensors")).equals(before)).toBe(true);
    expect(readdirSync(root).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  describe("bad directories name the file and field", () => {
    const mk = async (name: string, mutate: (dir: string) => void) => {
      const dir = join(root, `bad-${name}`);
      await saveModelDir(dir, { config: TINY, params: initParams(TINY, 5), meta: META, onnx: false });
      mutate(dir);
      return dir;
    };
    const edit = (file: string, f: (o: Record<string, unknown>) => void) => {
      const o = JSON.parse(readFileSync(file, "utf8"));
      f(o);
      writeFileSync(file, JSON.stringify(o));
    };
    it("missing directory / config.json / lenpred.json / weights", async () => {
      await expectLenpredError(loadModelDir(join(root, "nope")), /nope.*not found/);
      await expectLenpredError(loadModelDir(await mk("noconfig", (d) => rmSync(join(d, "config.json")))), /config\.json: missing/);
      await expectLenpredError(loadModelDir(await mk("nometa", (d) => rmSync(join(d, "lenpred.json")))), /lenpred\.json: not a lenpred model directory/);
      await expectLenpredError(loadModelDir(await mk("noweights", (d) => rmSync(join(d, "model.safetensors")))), /model\.safetensors: file not found/);
    });
    it("malformed or inconsistent config", async () => {
      await expectLenpredError(loadModelDir(await mk("json", (d) => writeFileSync(join(d, "config.json"), "{"))), /config\.json: malformed JSON/);
      await expectLenpredError(loadModelDir(await mk("heads", (d) => edit(join(d, "config.json"), (o) => { o.n_heads = 3; }))), /config\.json, field 'n_heads'/);
      await expectLenpredError(loadModelDir(await mk("type", (d) => edit(join(d, "config.json"), (o) => { o.model_type = "bert"; }))), /field 'model_type'/);
      await expectLenpredError(loadModelDir(await mk("labels", (d) => edit(join(d, "lenpred.json"), (o) => { o.buckets = uniformBuckets(500, 5); }))), /lenpred\.json, field 'buckets'.*5 buckets/);
      await expectLenpredError(loadModelDir(await mk("kind", (d) => edit(join(d, "lenpred.json"), (o) => { o.kind = "ngram"; }))), /field 'kind'/);
    });
    it("weights that do not match the config", async () => {
      await expectLenpredError(loadModelDir(await mk("dim", (d) => edit(join(d, "config.json"), (o) => { o.hidden_dim = 32; }))),
        /model\.safetensors, field 'distilbert\.transformer\.layer\.0\.ffn\.lin1\.weight': shape \[24,16\] does not match the config's \[32,16\]/);
      await expectLenpredError(loadModelDir(await mk("layers", (d) => edit(join(d, "config.json"), (o) => { o.n_layers = 3; }))),
        /field 'distilbert\.transformer\.layer\.2\.attention\.q_lin\.weight': missing parameter/);
      await expectLenpredError(loadModelDir(await mk("trunc", (d) => {
        const f = join(d, "model.safetensors");
        const b = readFileSync(f);
        writeFileSync(f, b.subarray(0, 8 + Number(b.readBigUInt64LE(0)) + 100));
      })), /model\.safetensors: tensors cover/);
    });
  });

  it("loads a full-size distilbert-base-uncased-shaped HF checkpoint (MLM keys, no lenpred.json)", async () => {
    // What `distilbert-base-uncased` on the hub has: DistilBertForMaskedLM config + weights (> 256 MB, so
    // the streamed reader is used). Random values from a cheap generator; spot-checked after loading.
    const dir = join(root, "distilbert-base-uncased");
    mkdirSync(dir);
    writeFileSync(join(dir, "config.json"), JSON.stringify({
      activation: "gelu", architectures: ["DistilBertForMaskedLM"], attention_dropout: 0.1, dim: 768, dropout: 0.1,
      hidden_dim: 3072, initializer_range: 0.02, max_position_embeddings: 512, model_type: "distilbert", n_heads: 12,
      n_layers: 6, pad_token_id: 0, qa_dropout: 0.1, seq_classif_dropout: 0.2, sinusoidal_pos_embds: false,
      tie_weights_: true, transformers_version: "4.11.0.dev0", vocab_size: 30522,
    }));
    const base = { ...PRESETS.base!, num_labels: 2 };
    const tensors: NamedTensors = new Map();
    let seed = 12345;
    const fill = (shape: number[]) => {
      const a = new Float32Array(numel(shape));
      for (let i = 0; i < a.length; i++) { seed = (seed * 1103515245 + 12345) >>> 0; a[i] = (seed / 2 ** 32 - 0.5) * 0.1; }
      return { shape, data: a };
    };
    for (const s of paramSpecs(base)) if (!s.name.startsWith("pre_classifier") && !s.name.startsWith("classifier")) tensors.set(s.name, fill(s.shape));
    tensors.set("vocab_transform.weight", fill([768, 768]));
    tensors.set("vocab_transform.bias", fill([768]));
    tensors.set("vocab_layer_norm.weight", fill([768]));
    tensors.set("vocab_layer_norm.bias", fill([768]));
    tensors.set("vocab_projector.bias", fill([30522]));
    await writeSafetensors(join(dir, "model.safetensors"), tensors, { metadata: { format: "pt" } });
    expect(readFileSync(join(dir, "model.safetensors")).length).toBeGreaterThan(256_000_000);

    await expectLenpredError(loadModelDir(dir), /lenpred\.json/);
    await expectLenpredError(loadModelDir(dir, { requireMeta: false }), /field 'pre_classifier\.weight': missing parameter/);
    const m = await loadModelDir(dir, { requireMeta: false, initMissingHeadSeed: 1, configOverrides: { num_labels: 2 } });
    expect(m.meta).toBeUndefined();
    expect(m.config).toMatchObject({ dim: 768, n_layers: 6, n_heads: 12, vocab_size: 30522, num_labels: 2 });
    expect(m.unusedKeys.sort()).toEqual(["vocab_layer_norm.bias", "vocab_layer_norm.weight", "vocab_projector.bias", "vocab_transform.bias", "vocab_transform.weight"]);
    expect(m.initialisedKeys.sort()).toEqual(["classifier.bias", "classifier.weight", "pre_classifier.bias", "pre_classifier.weight"]);
    expect([...m.params.values()].reduce((s, t) => s + t.data.length, 0)).toBe(66_955_010);
    for (const k of ["distilbert.embeddings.word_embeddings.weight", "distilbert.transformer.layer.5.ffn.lin2.weight"]) {
      const a = tensors.get(k)!.data;
      const b = m.params.get(k)!.data;
      expect(b.length).toBe(a.length);
      for (const i of [0, 1, 777, a.length - 1]) expect(b[i]).toBe(a[i]);
    }
    rmSync(dir, { recursive: true });
    expect(existsSync(dir)).toBe(false);
  });

  it("hfConfigJson keeps every DistilBertConfig field HF reads", () => {
    const j = hfConfigJson(PRESETS.base!, uniformBuckets(512, 8));
    for (const f of ["vocab_size", "dim", "n_layers", "n_heads", "hidden_dim", "max_position_embeddings", "dropout", "attention_dropout", "seq_classif_dropout", "activation", "initializer_range", "pad_token_id"]) {
      expect(j[f]).toBe((PRESETS.base as unknown as Record<string, unknown>)[f]);
    }
    expect(Object.keys(j.id2label as object)).toHaveLength(8);
  });
});
