/**
 * Parity of the engine's DistilBERT with an independent float64 reference (test/reference/distilbert-f64.ts),
 * of the ONNX inference export (loaded by plain onnxruntime-node) with the engine, of the backward pass with
 * finite differences of the reference, and a memorisation run.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import ort from "onnxruntime-node";
import { afterAll, describe, expect, it } from "vitest";
import { uniformBuckets } from "../src/data/buckets.js";
import { grad } from "../src/engine/autodiff.js";
import { Session, i64 } from "../src/engine/session.js";
import { loadModelDir, saveModelDir } from "../src/model/checkpoint.js";
import { PRESETS, type DistilBertConfig } from "../src/model/config.js";
import { buildGraph, DistilBertModel } from "../src/model/distilbert-trainable.js";
import { buildInferenceOnnx, exportInferenceOnnx } from "../src/model/export-onnx.js";
import { externalizeInitializers } from "../src/model/onnx-external.js";
import { initParams } from "../src/model/params.js";
import { createRng } from "../src/util/rng.js";
import { batchOf, lively } from "./helpers/lively-model.js";
import { referenceCrossEntropy, referenceForward } from "./reference/distilbert-f64.js";
import { tempDir } from "./helpers/tmp.js";

const TINY: DistilBertConfig = {
  ...PRESETS.tiny!, vocab_size: 60, dim: 32, n_layers: 2, n_heads: 4, hidden_dim: 48, max_position_embeddings: 24, num_labels: 5,
};



const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe("DistilBERT parity", () => {
  const dir = tempDir();
  const models: DistilBertModel[] = [];
  afterAll(async () => { for (const m of models) await m.dispose(); });

  for (const activation of ["gelu", "relu"] as const) {
    it(`engine forward matches the float64 reference within 1e-4 (${activation}, padded batch)`, async () => {
      const c = { ...TINY, activation };
      const params = lively(c, 11);
      const model = await DistilBertModel.create(c, { params });
      models.push(model);
      const b = batchOf([7, 3, 1, 7], 7, c.vocab_size, 5);
      const got = await model.forward(b);
      const ref = referenceForward(c, params, b.inputIds, b.attentionMask, b.batch, b.seqLen);
      const spread = Math.max(...ref.logits) - Math.min(...ref.logits);
      expect(spread).toBeGreaterThan(0.5); // the logits are not all ≈ 0
      expect(maxAbsDiff(got, ref.logits)).toBeLessThan(1e-4);
      // Padding must not leak: row 1 alone, unpadded, gives the same logits.
      const single = batchOf([3], 3, c.vocab_size, 5);
      single.inputIds.set(b.inputIds.subarray(7, 10));
      const alone = await model.forward(single);
      expect(maxAbsDiff(alone, got.subarray(5, 10))).toBeLessThan(1e-5);
    });
  }

  it("model.onnx loaded by plain onnxruntime-node matches the engine within 1e-4 (float32/float16, embedded/shared weights)", async () => {
    const params = lively(TINY, 21);
    const model = await DistilBertModel.create(TINY, { params });
    models.push(model);
    const b = batchOf([9, 4, 6], 9, TINY.vocab_size, 8);
    const engine = await model.forward(b);
    const file = join(dir, "model.onnx");
    await exportInferenceOnnx(TINY, params, file);
    const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
    expect(s.inputNames).toEqual(["input_ids", "attention_mask"]);
    expect(s.outputNames).toEqual(["logits"]);
    const run = async (sess: ort.InferenceSession, bb: typeof b) => (await sess.run({
      input_ids: new ort.Tensor("int64", bb.inputIds, [bb.batch, bb.seqLen]),
      attention_mask: new ort.Tensor("int64", bb.attentionMask, [bb.batch, bb.seqLen]),
    })).logits!;
    const out = await run(s, b);
    expect(out.dims).toEqual([3, 5]);
    expect(maxAbsDiff(out.data as Float32Array, engine)).toBeLessThan(1e-4);
    // Dynamic axes: another batch size and sequence length in the same session.
    const b2 = batchOf([2, 5, 5, 1, 3], 5, TINY.vocab_size, 9);
    const out2 = await run(s, b2);
    expect(out2.dims).toEqual([5, 5]);
    expect(maxAbsDiff(out2.data as Float32Array, await model.forward(b2))).toBeLessThan(1e-4);
    await s.release();

    // F16 model directory: model.onnx (float16 initializers) equals the engine on the loaded F16 weights.
    const mdir = join(dir, "m16");
    await saveModelDir(mdir, { config: TINY, params, meta: { buckets: uniformBuckets(500, 5), tokenizer: "bert-base-uncased" }, dtype: "F16" });
    // float16 initializers: the ONNX file is about half the float32 export.
    expect(readFileSync(join(mdir, "onnx", "model.onnx")).length).toBeLessThan(0.6 * readFileSync(file).length);
    const loaded = await loadModelDir(mdir);
    const m16 = await DistilBertModel.create(loaded.config, { params: loaded.params });
    models.push(m16);
    const s16 = await ort.InferenceSession.create(readFileSync(join(mdir, "onnx", "model.onnx")), { intraOpNumThreads: 1 });
    expect(maxAbsDiff((await run(s16, b)).data as Float32Array, await m16.forward(b))).toBeLessThan(1e-4);
    await s16.release();

    // Shared weights: model.onnx is only the graph and reads model.safetensors (F16 and F32), same logits.
    for (const dtype of ["F16", "F32"] as const) {
      const sdir = join(dir, `shared-${dtype}`);
      await saveModelDir(sdir, { config: TINY, params, meta: { buckets: uniformBuckets(500, 5), tokenizer: "bert-base-uncased" }, dtype, onnxWeights: "shared" });
      expect(readFileSync(join(sdir, "model.onnx")).length).toBeLessThan(100_000);
      expect(JSON.parse(readFileSync(join(sdir, "lenpred.json"), "utf8")).onnxWeights).toBe("shared");
      const ss = await ort.InferenceSession.create(join(sdir, "model.onnx"), { intraOpNumThreads: 1 });
      const mm = await DistilBertModel.create(TINY, { params: (await loadModelDir(sdir)).params });
      models.push(mm);
      expect(maxAbsDiff((await run(ss, b)).data as Float32Array, await mm.forward(b))).toBeLessThan(1e-4);
      await ss.release();
    }
    await expect(saveModelDir(join(dir, "shared-bf16"), { config: TINY, params, meta: { buckets: uniformBuckets(500, 5), tokenizer: "x" }, dtype: "BF16", onnxWeights: "shared" })).rejects.toThrow(/needs F32 or F16/);
  });

  it("the int8 export (onnx/model_quantized.onnx) stays close to the engine and picks the same classes", async () => {
    const params = lively(TINY, 41);
    const model = await DistilBertModel.create(TINY, { params });
    models.push(model);
    const b = batchOf([9, 4, 6, 9, 2, 7, 8, 5], 9, TINY.vocab_size, 12);
    const engine = await model.forward(b);
    const mdir = join(dir, "int8");
    await saveModelDir(mdir, { config: TINY, params, meta: { buckets: uniformBuckets(500, 5), tokenizer: "bert-base-uncased" }, onnxInt8: true });
    expect(JSON.parse(readFileSync(join(mdir, "lenpred.json"), "utf8")).onnxInt8).toBe("onnx/model_quantized.onnx");
    expect(existsSync(join(mdir, "model.int8.onnx"))).toBe(false); // not in the flat place any more
    const s = await ort.InferenceSession.create(join(mdir, "onnx", "model_quantized.onnx"), { intraOpNumThreads: 1 });
    expect(s.inputNames).toEqual(["input_ids", "attention_mask"]);
    const q = (await s.run({
      input_ids: new ort.Tensor("int64", b.inputIds, [b.batch, b.seqLen]),
      attention_mask: new ort.Tensor("int64", b.attentionMask, [b.batch, b.seqLen]),
    })).logits!.data as Float32Array;
    await s.release();
    const spread = Math.max(...engine) - Math.min(...engine);
    const diff = maxAbsDiff(q, engine);
    expect(diff).toBeGreaterThan(0); // it really is a different (quantized) computation
    expect(diff).toBeLessThan(0.03 * spread);
    const argmax = (a: ArrayLike<number>, r: number) => { let k = 0; for (let j = 1; j < 5; j++) if (a[r * 5 + j]! > a[r * 5 + k]!) k = j; return k; };
    let same = 0;
    for (let r = 0; r < b.batch; r++) same += argmax(q, r) === argmax(engine, r) ? 1 : 0;
    expect(same).toBeGreaterThanOrEqual(b.batch - 1);
  });

  it("externalizing initializers checks names and byte counts", () => {
    const bytes = buildInferenceOnnx(TINY, initParams(TINY, 1));
    expect(() => externalizeInitializers(bytes, new Map([["nope", { location: "w.bin", offset: 0, length: 4 }]]))).toThrow(/no initializer named nope/);
    expect(() => externalizeInitializers(bytes, new Map([["classifier.bias", { location: "w.bin", offset: 0, length: 4 }]]))).toThrow(/classifier\.bias' has 20 bytes/);
    const ok = externalizeInitializers(bytes, new Map([["classifier.bias", { location: "w.bin", offset: 8, length: 20 }]]));
    for (const k of ["w.bin", "location", "offset", "length"]) expect(Buffer.from(ok).includes(Buffer.from(k))).toBe(true);
    // Everything else is byte-identical: only the one initializer changed.
    const big = buildInferenceOnnx(TINY, initParams(TINY, 1));
    expect(Buffer.from(externalizeInitializers(big, new Map())).equals(Buffer.from(big))).toBe(true);
  });

  it("the training graph's loss and gradients match the float64 reference (finite differences)", async () => {
    const c: DistilBertConfig = { ...TINY, dropout: 0, attention_dropout: 0, seq_classif_dropout: 0 };
    const params = lively(c, 31);
    const b = batchOf([6, 6, 2], 6, c.vocab_size, 3);
    const labels = [1, 4, 0];
    const built = buildGraph(c, true);
    const names = [
      "distilbert.embeddings.word_embeddings.weight", "distilbert.embeddings.position_embeddings.weight",
      "distilbert.embeddings.LayerNorm.weight", "distilbert.transformer.layer.0.attention.q_lin.weight",
      "distilbert.transformer.layer.0.attention.q_lin.bias", "distilbert.transformer.layer.1.attention.v_lin.weight",
      "distilbert.transformer.layer.1.ffn.lin1.weight", "distilbert.transformer.layer.0.output_layer_norm.bias",
      "pre_classifier.weight", "classifier.bias",
    ];
    const wrt = names.map((n) => built.params.find((p) => p.name === n)!);
    const grads = grad(built.loss!, wrt);
    const outputs = Object.fromEntries([["loss", built.loss!], ...grads.map((gr, i) => [`g${i}`, gr] as const)]);
    const s = await Session.create(built.graph.toOnnx({ outputs }), { threads: 1 });
    const feeds = {
      input_ids: i64(b.inputIds, [b.batch, b.seqLen]), attention_mask: i64(b.attentionMask, [b.batch, b.seqLen]),
      labels: i64(labels, [3]), dropout_seed: i64([0], []),
      ...Object.fromEntries([...params].map(([k, t]) => [k, new ort.Tensor("float32", t.data, t.shape)])),
    };
    const out = await s.run(feeds);
    await s.dispose();
    const refLoss = (p: Map<string, { shape: number[]; data: ArrayLike<number> }>) => {
      const r = referenceForward(c, p, b.inputIds, b.attentionMask, b.batch, b.seqLen);
      return referenceCrossEntropy(r.logits, r.numLabels, labels);
    };
    const f64Params = new Map([...params].map(([k, t]) => [k, { shape: t.shape, data: Float64Array.from(t.data) }]));
    expect(Math.abs(Number((out.loss!.data as Float32Array)[0]) - refLoss(f64Params))).toBeLessThan(1e-5);
    const rng = createRng(77);
    for (let i = 0; i < names.length; i++) {
      const t = f64Params.get(names[i]!)!;
      const g = out[`g${i}`]!.data as Float32Array;
      // The largest-gradient element plus two random ones (embedding rows: only ids that occur have gradients).
      let big = 0;
      for (let j = 0; j < g.length; j++) if (Math.abs(g[j]!) > Math.abs(g[big]!)) big = j;
      for (const j of [big, rng.int(g.length), rng.int(g.length)]) {
        const h = 1e-5;
        const v = t.data[j]!;
        t.data[j] = v + h;
        const up = refLoss(f64Params);
        t.data[j] = v - h;
        const down = refLoss(f64Params);
        t.data[j] = v;
        const numeric = (up - down) / (2 * h);
        expect(Math.abs(g[j]! - numeric), `${names[i]}[${j}]: engine ${g[j]} vs numeric ${numeric}`).toBeLessThan(1e-3 * Math.max(1, Math.abs(numeric)));
      }
      expect(Math.abs(g[big]!), names[i]).toBeGreaterThan(1e-4); // checked something non-trivial (k_lin.bias would not be: its gradient is 0)
    }
  });

  it("a tiny model memorises a small synthetic classification set (loss < 0.05)", async () => {
    // 24 sequences whose class is set by the token in position 3 among distractors: attention has to find it.
    const c: DistilBertConfig = { ...TINY, num_labels: 4, dropout: 0.1, attention_dropout: 0.1 };
    const model = await DistilBertModel.create(c, { seed: 3 });
    models.push(model);
    const rng = createRng(4);
    const n = 24;
    const seqLen = 8;
    const ids = new BigInt64Array(n * seqLen);
    const mask = new BigInt64Array(n * seqLen).fill(1n);
    const labels = new Int32Array(n);
    for (let r = 0; r < n; r++) {
      labels[r] = r % 4;
      ids[r * seqLen] = 2n;
      for (let s = 1; s < seqLen; s++) ids[r * seqLen + s] = BigInt(10 + rng.int(50));
      ids[r * seqLen + 3] = BigInt(3 + labels[r]!); // ids 3..6 carry the label
      const len = 5 + rng.int(4);
      for (let s = len; s < seqLen; s++) { ids[r * seqLen + s] = 0n; mask[r * seqLen + s] = 0n; }
    }
    const batch = { batch: n, seqLen, inputIds: ids, attentionMask: mask, labels };
    let loss = Infinity;
    const first = await model.trainStep(batch, { learningRate: 3e-3, weightDecay: 0.01, maxGradNorm: 1 });
    for (let step = 1; step < 150 && loss >= 0.02; step++) loss = await model.trainStep(batch, { learningRate: 3e-3, weightDecay: 0.01, maxGradNorm: 1 });
    expect(first).toBeGreaterThan(1); // ≈ ln 4 at the start
    // Evaluate with dropout off: the training loss above is with dropout.
    const logits = await model.forward(batch);
    const evalLoss = referenceCrossEntropy(Float64Array.from(logits), 4, labels);
    expect(evalLoss).toBeLessThan(0.05);
    expect(loss).toBeLessThan(0.1);
  });
});
