/**
 * The DistilBERT forward for the inference export (`model.onnx`): the same function as `buildForward` in
 * distilbert-forward.ts without dropout, but shaped for inference only, with one exact saving there: only [CLS] reaches
 * the head, so in the last layer the keys and values are never materialised. With a single query per head,
 *   q_h·(x·Wk_hᵀ + bk_h)ᵀ = (q_h·Wk_h)·xᵀ + q_h·bk_h      (the last term is the same for every key: softmax drops it)
 *   p_h·(x·Wv_hᵀ + bv_h) = (p_h·x)·Wv_hᵀ + bv_h           (Σ p_h = 1)
 * so the last layer needs 1-row products instead of the two [seq × 768] × [768 × 768] projections
 * (≈ 94 MFLOP of 2.96 GFLOP for DistilBERT-base at 40 tokens; logits equal to float32 rounding). The other
 * layers run on [batch·seq, d] rows so every Linear is one Gemm with its bias fused (`gemm2d`).
 *
 * `contrib: true` writes the other layers with onnxruntime's CPU contrib ops (`com.microsoft` Attention with
 * one packed QKV weight, BiasGelu; optionally SkipLayerNormalization), which ORT's optimiser does not derive
 * from the standard graph itself. Measured no faster on this project's 2-core CPU (docs/model.md), so the
 * default export keeps standard ops; it stays for benchmarking and runtimes where it may pay.
 *
 * Weights stay initializers under their HF names and layout ([out, in]); transposes, reshapes and the QKV
 * concatenation are constant subgraphs ORT folds once at session creation, so float16 storage and external
 * (safetensors-shared) weights work unchanged. Padding keys get -1e9 (the Attention op: -10000); both
 * underflow to probability 0 in float32.
 */
import { attr, type Graph, type Tensor } from "../engine/graph.js";
import * as op from "../engine/ops.js";
import type { DistilBertConfig } from "./config.js";
import { LN_EPS, type ForwardResult, type ParamSource } from "./distilbert-forward.js";
import { layerPrefix, PREFIX } from "./params.js";

const MS = "com.microsoft";
const MASK_BIAS = -1e9;

export interface InferenceGraphOptions {
  /** Attention and GELU of the layers before the last as com.microsoft contrib ops (default false). */
  contrib?: boolean;
  /** With `contrib`: residual + bias + LayerNorm as one SkipLayerNormalization (measured slower; default false). */
  skipLayerNorm?: boolean;
  /** Last layer: reassociate so no key/value vector is materialised (default true; false only to measure it). */
  reassociateLast?: boolean;
  /**
   * Without `contrib`: the layers before the last on [batch·seq, d] rows, each Linear one Gemm with its bias
   * fused (default true; measured 1.5–2% faster single-prompt than MatMul + Add on [b, s, d]).
   */
  gemm2d?: boolean;
}

export function buildInferenceForward(g: Graph, c: DistilBertConfig, param: ParamSource, inputIds: Tensor, attentionMask: Tensor, o: InferenceGraphOptions = {}): ForwardResult {
  const d = c.dim;
  const nh = c.n_heads;
  const dh = d / nh;
  const f32 = (shape: Tensor["shape"]) => [{ dtype: "float32" as const, shape }];
  // [out, in] -> [in, out] (folded at load).
  const wT = (name: string) => op.transpose(param(`${name}.weight`), [1, 0]);
  const matmulT = (x: Tensor, name: string) => op.matmul(x, wT(name));
  const norm = (x: Tensor, name: string) => op.layerNorm(x, param(`${name}.weight`), param(`${name}.bias`), { epsilon: LN_EPS });
  /** LayerNorm(x + skip + bias) with the LayerNorm called `name`. */
  const skipNorm = (x: Tensor, skip: Tensor, bias: Tensor, name: string) => !(o.contrib && o.skipLayerNorm) ? norm(op.add(op.add(x, bias), skip), name) :
    g.node("SkipLayerNormalization", [x, skip, param(`${name}.weight`), param(`${name}.bias`), bias], f32(x.shape), { epsilon: attr.f(LN_EPS) }, MS)[0]!;
  const biasGelu = (x: Tensor, bias: Tensor) =>
    c.activation !== "gelu" ? op.relu(op.add(x, bias)) : o.contrib ? g.node("BiasGelu", [x, bias], f32(x.shape), {}, MS)[0]! : op.gelu(op.add(x, bias));

  const positions = op.range(op.dimOf(inputIds, 1), inputIds.shape[1]!);
  const words = op.gather(param(`${PREFIX}embeddings.word_embeddings.weight`), inputIds, 0);
  const pos = op.gather(param(`${PREFIX}embeddings.position_embeddings.weight`), positions, 0);
  let x = norm(op.add(words, pos), `${PREFIX}embeddings.LayerNorm`);

  const mask32 = o.contrib ? op.cast(attentionMask, "int32") : undefined; // Attention's raw [batch, seq] key mask
  const maskBias = op.mul(op.sub(1, op.cast(op.unsqueeze(attentionMask, [1, 2]), "float32")), MASK_BIAS);
  const heads = (t: Tensor, perm: number[]) => op.transpose(op.reshape(t, [0, 0, nh, dh]), perm);

  const twoD = (o.gemm2d ?? true) && !o.contrib;
  const ids2 = op.shapeOf(inputIds); // [batch, seq], to restore [b, s, …] from rows
  const x3 = x;
  if (twoD) x = op.reshape(x, [-1, d]);
  const heads2 = (t: Tensor, perm: number[]) =>
    op.transpose(op.reshapeLike(t, op.concat([ids2, op.ints(g, [nh, dh])], 0), [x3.shape[0]!, x3.shape[1]!, nh, dh]), perm);
  const linB = (t: Tensor, name: string, l: number) =>
    twoD && l < c.n_layers - 1 ? op.linear(t, param(`${name}.weight`), param(`${name}.bias`)) : op.add(matmulT(t, name), param(`${name}.bias`));

  for (let l = 0; l < c.n_layers; l++) {
    const p = layerPrefix(l);
    const att = `${p}attention.`;
    let ctx: Tensor;
    let residual: Tensor;
    if (twoD && l === c.n_layers - 1) x = op.reshapeLike(x, op.concat([ids2, op.ints(g, [d])], 0), x3.shape);
    if (l < c.n_layers - 1) {
      residual = x;
      if (twoD) {
        const lin = (n: string) => linB(x, att + n, l);
        const scores = op.add(op.matmul(heads2(op.mul(lin("q_lin"), 1 / Math.sqrt(dh)), [0, 2, 1, 3]), heads2(lin("k_lin"), [0, 2, 3, 1])), maskBias);
        ctx = op.reshape(op.transpose(op.matmul(op.softmax(scores, -1), heads2(lin("v_lin"), [0, 2, 1, 3])), [0, 2, 1, 3]), [-1, d]);
      } else if (o.contrib) {
        const w = op.concat(["q_lin", "k_lin", "v_lin"].map((n) => wT(att + n)), 1); // [d, 3d]
        const b = op.concat(["q_lin", "k_lin", "v_lin"].map((n) => param(`${att}${n}.bias`)), 0);
        ctx = g.node("Attention", [x, w, b, mask32!], f32(x.shape), { num_heads: attr.i(nh) }, MS)[0]!;
      } else {
        const lin = (n: string) => op.add(matmulT(x, att + n), param(`${att}${n}.bias`));
        const scores = op.add(op.matmul(heads(op.mul(lin("q_lin"), 1 / Math.sqrt(dh)), [0, 2, 1, 3]), heads(lin("k_lin"), [0, 2, 3, 1])), maskBias);
        ctx = op.reshape(op.transpose(op.matmul(op.softmax(scores, -1), heads(lin("v_lin"), [0, 2, 1, 3])), [0, 2, 1, 3]), [0, 0, d]);
      }
    } else {
      // Only [CLS] reaches the head: queries and everything after them for position 0 alone.
      residual = op.slice(x, [0], [1], [1]);
      const q = op.add(matmulT(residual, `${att}q_lin`), param(`${att}q_lin.bias`));
      if (o.reassociateLast ?? true) {
        // The reassociation in the header comment: no [seq × d] K or V.
        const qh = op.reshape(op.mul(q, 1 / Math.sqrt(dh)), [0, nh, 1, dh]); // [b, nh, 1, dh]
        const wk = op.reshape(param(`${att}k_lin.weight`), [nh, dh, d]); // [nh, dh, d]
        const u = op.matmul(qh, wk); // [b, nh, 1, d]
        const xT = op.unsqueeze(op.transpose(x, [0, 2, 1]), [1]); // [b, 1, d, s]
        const probs = op.softmax(op.add(op.matmul(u, xT), maskBias), -1); // [b, nh, 1, s]
        const px = op.matmul(probs, op.unsqueeze(x, [1])); // [b, nh, 1, d]
        const wvT = op.transpose(op.reshape(param(`${att}v_lin.weight`), [nh, dh, d]), [0, 2, 1]); // [nh, d, dh]
        const bv = op.reshape(param(`${att}v_lin.bias`), [nh, 1, dh]);
        ctx = op.reshape(op.add(op.matmul(px, wvT), bv), [0, 1, d]); // [b, nh, 1, dh] -> [b, 1, d]
      } else {
        const k = op.add(matmulT(x, `${att}k_lin`), param(`${att}k_lin.bias`));
        const v = op.add(matmulT(x, `${att}v_lin`), param(`${att}v_lin.bias`));
        const scores = op.add(op.matmul(heads(op.mul(q, 1 / Math.sqrt(dh)), [0, 2, 1, 3]), heads(k, [0, 2, 3, 1])), maskBias);
        ctx = op.reshape(op.transpose(op.matmul(op.softmax(scores, -1), heads(v, [0, 2, 1, 3])), [0, 2, 1, 3]), [0, 0, d]);
      }
    }
    if (twoD) {
      const sa = norm(op.add(linB(ctx, `${att}out_lin`, l), residual), `${p}sa_layer_norm`);
      const h = linB(sa, `${p}ffn.lin1`, l);
      const act = c.activation === "gelu" ? op.gelu(h) : op.relu(h);
      x = norm(op.add(linB(act, `${p}ffn.lin2`, l), sa), `${p}output_layer_norm`);
      continue;
    }
    const sa = skipNorm(matmulT(ctx, `${att}out_lin`), residual, param(`${att}out_lin.bias`), `${p}sa_layer_norm`);
    const h = biasGelu(matmulT(sa, `${p}ffn.lin1`), param(`${p}ffn.lin1.bias`));
    x = skipNorm(matmulT(h, `${p}ffn.lin2`), sa, param(`${p}ffn.lin2.bias`), `${p}output_layer_norm`);
  }

  const cls = op.gather(x, op.scalar(g, 0, "int64"), 1); // [b, d]
  const pre = op.relu(op.linear(cls, param("pre_classifier.weight"), param("pre_classifier.bias")));
  const logits = op.linear(pre, param("classifier.weight"), param("classifier.bias"));
  return { logits, cls };
}
