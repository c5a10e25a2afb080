/** DistilBertModel as the training loop uses it: heads and their losses, exact resume, errors. */
import { afterAll, describe, expect, it } from "vitest";
import { PRESETS, type DistilBertConfig } from "../src/model/config.js";
import { DistilBertModel } from "../src/model/distilbert-trainable.js";
import { regressionTarget, tokensFromOutput } from "../src/model/heads.js";
import { initParams, paramSpecs } from "../src/model/params.js";
import type { NamedTensors } from "../src/engine/tensors.js";
import { LenpredError } from "../src/util/errors.js";
import { createRng } from "../src/util/rng.js";
import { referenceCrossEntropy, referenceForward } from "./reference/distilbert-f64.js";

const NO_DROPOUT = { dropout: 0, attention_dropout: 0, seq_classif_dropout: 0 };
const TINY: DistilBertConfig = {
  ...PRESETS.tiny!, ...NO_DROPOUT, vocab_size: 40, dim: 16, n_layers: 2, n_heads: 2, hidden_dim: 32, max_position_embeddings: 16, num_labels: 3,
};

function batch(n: number, seqLen: number, seed: number) {
  const rng = createRng(seed);
  const inputIds = new BigInt64Array(n * seqLen);
  const attentionMask = new BigInt64Array(n * seqLen);
  for (let r = 0; r < n; r++) {
    const len = 2 + rng.int(seqLen - 1);
    for (let s = 0; s < len; s++) { inputIds[r * seqLen + s] = BigInt(1 + rng.int(39)); attentionMask[r * seqLen + s] = 1n; }
  }
  return { batch: n, seqLen, inputIds, attentionMask };
}

const snapshot = (t: NamedTensors) => new Map([...t].map(([k, v]) => [k, Float32Array.from(v.data)]));
const STEP = { learningRate: 1e-2, weightDecay: 0.01, maxGradNorm: 1 };

describe("DistilBertModel (TrainableModel)", () => {
  const models: DistilBertModel[] = [];
  const make = async (c: DistilBertConfig, o: Parameters<typeof DistilBertModel.create>[1] = {}) => {
    const m = await DistilBertModel.create(c, o);
    models.push(m);
    return m;
  };
  afterAll(async () => { for (const m of models) await m.dispose(); });

  it("classification: first loss is the reference cross-entropy; parameters are HF-named and the caller's stay untouched", async () => {
    const params = initParams(TINY, 1);
    const before = snapshot(params);
    const m = await make(TINY, { params });
    expect(m.numOutputs).toBe(3);
    const b = { ...batch(6, 8, 1), labels: Int32Array.from([0, 1, 2, 2, 1, 0]) };
    const ref = referenceForward(TINY, params, b.inputIds, b.attentionMask, 6, 8);
    const loss = await m.trainStep(b, STEP);
    expect(Math.abs(loss - referenceCrossEntropy(ref.logits, 3, b.labels))).toBeLessThan(1e-5);
    expect([...m.parameters().keys()]).toEqual(paramSpecs(TINY).map((s) => s.name));
    // The step changed the model's parameters but not the caller's tensors.
    const w = "distilbert.transformer.layer.0.ffn.lin1.weight";
    expect(m.parameters().get(w)!.data).not.toEqual(before.get(w));
    for (const [k, v] of params) expect(v.data).toEqual(before.get(k));
    expect(m.optimizerState().step).toBe(1);
  });

  it("regression: MSE on log1p(tokens) targets, loss falls, outputs map back to tokens", async () => {
    const c: DistilBertConfig = { ...TINY, head: "regression", num_labels: 1 };
    const params = initParams(c, 2);
    const m = await make(c, { params });
    const lengths = [10, 200, 35, 90];
    const b = { ...batch(4, 6, 2), targets: Float32Array.from(lengths, regressionTarget) };
    const ref = referenceForward(c, params, b.inputIds, b.attentionMask, 4, 6).logits;
    const mse = lengths.reduce((s, len, i) => s + (ref[i]! - Math.log1p(len)) ** 2, 0) / 4;
    const first = await m.trainStep(b, STEP);
    expect(Math.abs(first - mse)).toBeLessThan(1e-4 * mse);
    let last = first;
    for (let i = 0; i < 300 && last > 0.01; i++) last = await m.trainStep(b, { ...STEP, learningRate: 1e-2 });
    expect(last).toBeLessThan(0.01);
    const out = await m.forward(b);
    expect(out.length).toBe(4);
    for (let i = 0; i < 4; i++) expect(Math.abs(tokensFromOutput(out[i]!) - lengths[i]!) / lengths[i]!).toBeLessThan(0.25);
    expect(tokensFromOutput(-5)).toBe(0);
  });

  it("quantile: pinball loss against the reference, and the learned quantiles are ordered", async () => {
    const c: DistilBertConfig = { ...TINY, head: "quantile", num_labels: 3, quantiles: [0.1, 0.5, 0.9] };
    const params = initParams(c, 3);
    const m = await make(c, { params });
    const b0 = batch(8, 6, 3);
    // The same prompt with noisy targets: the quantile outputs must spread out around the median.
    for (let r = 1; r < 8; r++) { b0.inputIds.set(b0.inputIds.subarray(0, 6), r * 6); b0.attentionMask.set(b0.attentionMask.subarray(0, 6), r * 6); }
    const targets = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const b = { ...b0, targets };
    const ref = referenceForward(c, params, b.inputIds, b.attentionMask, 8, 6).logits;
    let pin = 0;
    for (let r = 0; r < 8; r++) for (let j = 0; j < 3; j++) { const d = targets[r]! - ref[r * 3 + j]!; const q = c.quantiles![j]!; pin += Math.max(q * d, (q - 1) * d); }
    expect(Math.abs((await m.trainStep(b, STEP)) - pin / 24)).toBeLessThan(1e-4);
    for (let i = 0; i < 150; i++) await m.trainStep(b, { ...STEP, learningRate: 1e-2 });
    const out = await m.forward(b);
    expect(out[0]!).toBeLessThan(out[1]!);
    expect(out[1]!).toBeLessThan(out[2]!);
    expect(out[0]!).toBeLessThan(3);
    expect(out[2]!).toBeGreaterThan(6);
  });

  it("optimizerState + loadOptimizerState resume exactly with dropout on (fresh model, same batches)", async () => {
    // Dropout masks are hashed from (seed, optimizer step), so a fresh model with the same seed and the saved
    // state draws the masks the uninterrupted model draws: bit-identical losses and parameters.
    const DROP: DistilBertConfig = { ...TINY, dropout: 0.1, attention_dropout: 0.1, seq_classif_dropout: 0.2 };
    const params = initParams(DROP, 4);
    const a = await make(DROP, { params, seed: 7 });
    const batches = [1, 2, 3, 4].map((s) => ({ ...batch(5, 7, 10 + s), labels: Int32Array.from([0, 1, 2, 0, 1]) }));
    await a.trainStep(batches[0]!, STEP);
    await a.trainStep(batches[1]!, STEP);
    const st = a.optimizerState();
    const saved = { step: st.step, tensors: new Map([...st.tensors].map(([k, t]) => [k, { shape: t.shape, data: Float32Array.from(t.data) }])) };
    expect(saved.step).toBe(2);
    expect(saved.tensors.has("classifier.weight.exp_avg_sq")).toBe(true);
    expect(saved.tensors.has("classifier.weight")).toBe(true);
    const la = [await a.trainStep(batches[2]!, STEP), await a.trainStep(batches[3]!, STEP)];

    const b = await make(DROP, { params: initParams(DROP, 99), seed: 7 }); // other init, overwritten by the state
    b.loadOptimizerState(saved);
    const lb = [await b.trainStep(batches[2]!, STEP), await b.trainStep(batches[3]!, STEP)];
    expect(lb).toEqual(la);
    for (const [k, t] of a.parameters()) expect(b.parameters().get(k)!.data).toEqual(t.data);
    expect(b.optimizerState().step).toBe(4);

    // The dropout really is on and follows the seed: another seed from the same state gives other losses,
    // and the same batch at another step (another mask) gives another loss at lr 0.
    const c = await make(DROP, { seed: 8 });
    c.loadOptimizerState(saved);
    const lc = [await c.trainStep(batches[2]!, STEP), await c.trainStep(batches[3]!, STEP)];
    expect(lc[0]).not.toBe(la[0]);
    const d = await make(DROP, { params, seed: 7 });
    const l0 = await d.trainStep(batches[0]!, { ...STEP, learningRate: 0 });
    const l1 = await d.trainStep(batches[0]!, { ...STEP, learningRate: 0 });
    expect(l1).not.toBe(l0);
    await expect(async () => b.loadOptimizerState({ step: 1, tensors: new Map() })).rejects.toThrow(LenpredError);
  });

  it("changing weight decay or clipping between steps keeps parameters, moments and step count", async () => {
    const m = await make(TINY, { seed: 5 });
    const b = { ...batch(4, 5, 5), labels: Int32Array.from([0, 1, 2, 0]) };
    const before = await m.forward(b);
    // lr 0 keeps the parameters (whatever the decay), so both steps see the same gradient g:
    // with the history kept the first moment goes 0.1·g → 0.19·g; a fresh optimizer would restart at 0.1·g.
    await m.trainStep(b, { learningRate: 0, weightDecay: 0.01, maxGradNorm: 0 });
    const m1 = Float32Array.from(m.optimizerState().tensors.get("pre_classifier.weight.exp_avg")!.data);
    await m.trainStep(b, { learningRate: 0, weightDecay: 0.5, maxGradNorm: 0 }); // other decay: a per-step override
    expect(await m.forward(b)).toEqual(before);
    expect(m.optimizerState().step).toBe(2);
    const m2 = m.optimizerState().tensors.get("pre_classifier.weight.exp_avg")!.data;
    let checked = 0;
    for (let i = 0; i < m1.length; i++) {
      if (Math.abs(m1[i]!) < 1e-6) continue;
      expect(m2[i]! / m1[i]!).toBeCloseTo(1.9, 3);
      checked++;
    }
    expect(checked).toBeGreaterThan(10);
  });

  it("rejects bad batches with errors naming the field", async () => {
    const m = await make(TINY, { seed: 6 });
    const b = batch(2, 4, 6);
    await expect(m.trainStep({ ...b, labels: Int32Array.from([0, 3]) }, STEP)).rejects.toThrow(/field 'labels'.*label 3 out of range 0..2/);
    await expect(m.trainStep(b, STEP)).rejects.toThrow(/field 'labels'/);
    const bad = batch(2, 4, 6);
    bad.inputIds[5] = 40n;
    await expect(m.forward(bad)).rejects.toThrow(/field 'input_ids'.*token id 40 at position 5/);
    await expect(m.forward(batch(1, 17, 1))).rejects.toThrow(/exceeds max_position_embeddings 16/);
    const reg = await make({ ...TINY, head: "regression", num_labels: 1 }, { seed: 1 });
    await expect(reg.trainStep(b, STEP)).rejects.toThrow(/field 'targets'/);
    await expect(DistilBertModel.create({ ...TINY, head: "regression", num_labels: 2 })).rejects.toThrow(/num_labels/);
  });
});
