/**
 * The DistilBERT forward pass as an engine graph, op for op what HF `DistilBertForSequenceClassification`
 * computes, using only standard ONNX ops (so the engine's autodiff can differentiate it and plain
 * onnxruntime can run the inference export):
 *
 *   x = Dropout(LayerNorm(word_embeddings[ids] + position_embeddings[0..seq)))
 *   per layer:  q, k, v = Linear(x) split into heads; p = Dropout(softmax(q kᵀ/√dh + mask bias)); ctx = p v
 *               x = sa_layer_norm(out_lin(ctx) + x)
 *               x = output_layer_norm(Dropout(lin2(act(lin1(x)))) + x)
 *   logits = classifier(Dropout(ReLU(pre_classifier(x[:, 0]))))
 *
 * Padding keys get a -1e9 additive bias (HF masks with finfo.min; both give them probability 0).
 * Since the head reads only [CLS], the last layer computes queries, attention output and FFN for position 0
 * only (keys/values still cover every position): identical logits and gradients, fewer FLOPs.
 */
import type { Graph, Tensor } from "../engine/graph.js";
import * as op from "../engine/ops.js";
import { keyedDropout } from "../engine/random.js";
import type { DistilBertConfig } from "./config.js";
import { layerPrefix, PREFIX } from "./params.js";

export const LN_EPS = 1e-12;
const MASK_BIAS = -1e9;

/** Where the graph gets parameter `name` from (an initializer, a graph input, ...). */
export type ParamSource = (name: string) => Tensor;

export interface ForwardOptions {
  training: boolean;
  /**
   * Per-step dropout seed (int64 scalar, e.g. a graph input): each dropout's mask is then hashed from
   * (seed, its index in the graph, element index) (engine/random.ts), so feeding the same seed reproduces the
   * masks exactly. Without it, training dropout is ORT's Dropout op (its generator restarts per session).
   */
  dropoutKey?: Tensor;
  /** Only for ORT's Dropout (no `dropoutKey`): base seed, each node gets seed + its index; unseeded when undefined. */
  dropoutSeed?: number;
  /** Replace the Linear named `name` (e.g. a quantized matmul in an inference export); undefined = default. */
  linear?: (x: Tensor, name: string) => Tensor | undefined;
}

export interface ForwardResult {
  /** [batch, num_labels] */
  logits: Tensor;
  /** Final hidden state of [CLS], [batch, dim]. */
  cls: Tensor;
}

export function buildForward(g: Graph, c: DistilBertConfig, param: ParamSource, inputIds: Tensor, attentionMask: Tensor, o: ForwardOptions): ForwardResult {
  const d = c.dim;
  const nh = c.n_heads;
  const dh = d / nh;
  let dropIndex = 0;
  const drop = (x: Tensor, ratio: number): Tensor => {
    const site = dropIndex++;
    if (!o.training) return x;
    if (o.dropoutKey) return keyedDropout(x, ratio, o.dropoutKey, site);
    return op.dropout(x, ratio, true, o.dropoutSeed === undefined ? undefined : o.dropoutSeed + site);
  };
  const lin = (x: Tensor, name: string) => o.linear?.(x, name) ?? op.linear(x, param(`${name}.weight`), param(`${name}.bias`));
  const norm = (x: Tensor, name: string) => op.layerNorm(x, param(`${name}.weight`), param(`${name}.bias`), { epsilon: LN_EPS });

  // Embeddings. Position ids are Range(0, seq) of the runtime sequence length.
  const positions = op.range(op.dimOf(inputIds, 1), inputIds.shape[1]!);
  const words = op.gather(param(`${PREFIX}embeddings.word_embeddings.weight`), inputIds, 0);
  const pos = op.gather(param(`${PREFIX}embeddings.position_embeddings.weight`), positions, 0);
  let x = drop(norm(op.add(words, pos), `${PREFIX}embeddings.LayerNorm`), c.dropout);

  // Additive key mask [batch, 1, 1, seq]: 0 for tokens, -1e9 for padding.
  const maskF = op.cast(op.unsqueeze(attentionMask, [1, 2]), "float32");
  const maskBias = op.mul(op.sub(1, maskF), MASK_BIAS);

  // [b, s, d] -> [b, h, s, dh]; k goes straight to [b, h, dh, s] for q·kᵀ.
  const heads = (t: Tensor, perm: number[]) => op.transpose(op.reshape(t, [0, 0, nh, dh]), perm);

  for (let l = 0; l < c.n_layers; l++) {
    const p = layerPrefix(l);
    // The classifier reads only position 0, so in the last layer only the keys and values need every
    // position: queries, attention output, FFN and LayerNorms run on [CLS] alone (same logits, ~14% fewer FLOPs).
    const last = l === c.n_layers - 1;
    const k = lin(x, `${p}attention.k_lin`);
    const v = lin(x, `${p}attention.v_lin`);
    const residual = last ? op.slice(x, [0], [1], [1]) : x; // [b, 1, d] or [b, s, d]
    const q = lin(residual, `${p}attention.q_lin`);
    const qh = heads(op.mul(q, 1 / Math.sqrt(dh)), [0, 2, 1, 3]);
    const kh = heads(k, [0, 2, 3, 1]);
    const vh = heads(v, [0, 2, 1, 3]);
    const scores = op.add(op.matmul(qh, kh), maskBias);
    const probs = drop(op.softmax(scores, -1), c.attention_dropout);
    const ctx = op.reshape(op.transpose(op.matmul(probs, vh), [0, 2, 1, 3]), [0, 0, d]);
    const sa = norm(op.add(lin(ctx, `${p}attention.out_lin`), residual), `${p}sa_layer_norm`);
    const h = lin(sa, `${p}ffn.lin1`);
    const act = c.activation === "gelu" ? op.gelu(h) : op.relu(h);
    const ffn = drop(lin(act, `${p}ffn.lin2`), c.dropout);
    x = norm(op.add(ffn, sa), `${p}output_layer_norm`);
  }

  const cls = op.gather(x, op.scalar(g, 0, "int64"), 1); // [b, d]
  const pre = drop(op.relu(lin(cls, "pre_classifier")), c.seq_classif_dropout);
  const logits = lin(pre, "classifier");
  return { logits, cls };
}
