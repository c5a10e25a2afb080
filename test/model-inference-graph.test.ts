/**
 * The inference export's graph forms (src/model/inference-graph.ts): the default (standard ops, last layer
 * without key/value projections), its ablations, the contrib-op form and distilbert-forward.ts's form must all give the
 * engine's logits within 1e-4 under plain onnxruntime-node, for padded batches and other batch sizes and
 * sequence lengths in the same session (dynamic axes).
 */
import ort from "onnxruntime-node";
import { afterAll, describe, expect, it } from "vitest";
import { PRESETS, type DistilBertConfig } from "../src/model/config.js";
import { DistilBertModel } from "../src/model/distilbert-trainable.js";
import { buildInferenceOnnx, type ExportOptions } from "../src/model/export-onnx.js";
import { initParams } from "../src/model/params.js";
import { batchOf, lively } from "./helpers/lively-model.js";

const TINY: DistilBertConfig = {
  ...PRESETS.tiny!, vocab_size: 60, dim: 32, n_layers: 3, n_heads: 4, hidden_dim: 48, max_position_embeddings: 24, num_labels: 5,
};



function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** [label, export options, whether the graph uses the com.microsoft domain] */
const FORMS: [string, ExportOptions, boolean][] = [
  ["default (standard ops, Gemm rows, reassociated last layer)", {}, false],
  ["standard ops, MatMul + Add on [b, s, d]", { inference: { gemm2d: false } }, false],
  ["standard ops, plain last layer", { inference: { reassociateLast: false } }, false],
  ["standard ops, MatMul + Add, plain last layer", { inference: { gemm2d: false, reassociateLast: false } }, false],
  ["contrib ops, reassociated last layer", { form: "contrib" }, true],
  ["contrib ops with SkipLayerNormalization, plain last layer", { form: "contrib", inference: { skipLayerNorm: true, reassociateLast: false } }, true],
  ["engine form (distilbert-forward.ts)", { form: "engine" }, false],
];

const hasContrib = (bytes: Uint8Array) => Buffer.from(bytes).includes("com.microsoft");

describe("inference export graph forms", () => {
  const models: DistilBertModel[] = [];
  afterAll(async () => { for (const m of models) await m.dispose(); });

  for (const activation of ["gelu", "relu"] as const) {
    it(`every form matches the engine within 1e-4 (${activation}, padded batches, dynamic axes)`, async () => {
      const c = { ...TINY, activation };
      const params = lively(c, 31);
      const model = await DistilBertModel.create(c, { params });
      models.push(model);
      // Padded rows (incl. a 1-token row), then another batch size and length, then batch 1 unpadded.
      const batches = [batchOf([9, 4, 1, 6], 9, c.vocab_size, 3), batchOf([2, 5, 5], 5, c.vocab_size, 4), batchOf([12], 12, c.vocab_size, 5)];
      const engine = await Promise.all(batches.map((b) => model.forward(b)));
      const spread = Math.max(...engine[0]!) - Math.min(...engine[0]!);
      expect(spread).toBeGreaterThan(0.5); // logits are not all ≈ 0
      for (const [label, opts, contrib] of FORMS) {
        const bytes = buildInferenceOnnx(c, params, opts);
        expect(hasContrib(bytes), label).toBe(contrib);
        const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
        expect(s.inputNames).toEqual(["input_ids", "attention_mask"]);
        expect(s.outputNames).toEqual(["logits"]);
        for (let i = 0; i < batches.length; i++) {
          const b = batches[i]!;
          const out = (await s.run({
            input_ids: new ort.Tensor("int64", b.inputIds, [b.batch, b.seqLen]),
            attention_mask: new ort.Tensor("int64", b.attentionMask, [b.batch, b.seqLen]),
          })).logits!;
          expect(out.dims, label).toEqual([b.batch, c.num_labels]);
          expect(maxAbsDiff(out.data as Float32Array, engine[i]!), `${label}, batch ${i}`).toBeLessThan(1e-4);
        }
        await s.release();
      }
    });
  }

  it("the int8 export keeps its own (standard + DynamicQuantizeMatMul) form", () => {
    const bytes = Buffer.from(buildInferenceOnnx(TINY, initParams(TINY, 1), { quantize: "int8" }));
    expect(bytes.includes("DynamicQuantizeMatMul")).toBe(true);
    expect(bytes.includes("BiasGelu")).toBe(false);
    expect(Buffer.from(buildInferenceOnnx(TINY, initParams(TINY, 1))).includes("DynamicQuantizeMatMul")).toBe(false);
  });
});
