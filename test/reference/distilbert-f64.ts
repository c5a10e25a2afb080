/**
 * Independent float64 reference of HF `DistilBertForSequenceClassification.forward` in eval mode (dropout
 * off), written from the HF modeling code with plain loops: no engine, no ONNX, nothing shared with src/
 * except the parameter map. Used by the parity tests only; it is slow and meant for tiny configs.
 *
 *   x = LayerNorm(word_emb[ids] + pos_emb[0..n))                       (eps 1e-12)
 *   per layer: q = (x Wq^T + bq) / sqrt(dh), k, v likewise (per head)
 *              scores = q k^T, masked_fill(mask == 0, -inf-ish), softmax, ctx = p v
 *              x = LN_sa(ctx Wo^T + bo + x); x = LN_out(lin2(act(lin1(x))) + x)
 *   logits = classifier(relu(pre_classifier(x[:, 0])))
 */
export interface RefTensor {
  shape: number[];
  data: ArrayLike<number>;
}
export interface RefConfig {
  dim: number;
  n_layers: number;
  n_heads: number;
  hidden_dim: number;
  activation: "gelu" | "relu";
}

const LN_EPS = 1e-12;

/** erf in float64: Taylor series for |x| < 3, asymptotic erfc beyond (error well below 1e-12 on gelu). */
function erf64(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 200; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    const r = (2 / Math.sqrt(Math.PI)) * sum;
    return x < 0 ? -r : r;
  }
  // erfc(x) ~ exp(-x²)/(x√π) · Σ (-1)^n (2n-1)!! / (2x²)^n
  let s = 1;
  let t = 1;
  for (let n = 1; n < 12; n++) {
    t *= -(2 * n - 1) / (2 * ax * ax);
    s += t;
  }
  const erfc = (Math.exp(-ax * ax) / (ax * Math.sqrt(Math.PI))) * s;
  return x < 0 ? erfc - 1 : 1 - erfc;
}

function act(v: number, kind: "gelu" | "relu"): number {
  return kind === "relu" ? Math.max(0, v) : 0.5 * v * (1 + erf64(v / Math.SQRT2));
}

function get(params: Map<string, RefTensor>, name: string): RefTensor {
  const t = params.get(name);
  if (!t) throw new Error(`reference: missing parameter ${name}`);
  return t;
}

/** y[r, o] = Σ_i x[r, i] W[o, i] + b[o] (PyTorch Linear). */
function linear(x: Float64Array, rows: number, inDim: number, w: RefTensor, b: RefTensor): Float64Array {
  const out = w.shape[0]!;
  const y = new Float64Array(rows * out);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < out; o++) {
      let s = b.data[o]!;
      for (let i = 0; i < inDim; i++) s += x[r * inDim + i]! * w.data[o * inDim + i]!;
      y[r * out + o] = s;
    }
  }
  return y;
}

function layerNorm(x: Float64Array, rows: number, d: number, g: RefTensor, b: RefTensor): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[r * d + i]!;
    mean /= d;
    let v = 0;
    for (let i = 0; i < d; i++) v += (x[r * d + i]! - mean) ** 2;
    const inv = 1 / Math.sqrt(v / d + LN_EPS);
    for (let i = 0; i < d; i++) y[r * d + i] = (x[r * d + i]! - mean) * inv * g.data[i]! + b.data[i]!;
  }
  return y;
}

/**
 * Logits [batch, num_labels] in float64 for int token ids [batch, seq] and mask [batch, seq] (1 = token).
 * Also returns the final hidden states for debugging.
 */
export function referenceForward(
  cfg: RefConfig,
  params: Map<string, RefTensor>,
  ids: ArrayLike<number | bigint>,
  mask: ArrayLike<number | bigint>,
  batch: number,
  seq: number,
): { logits: Float64Array; numLabels: number; hidden: Float64Array } {
  const d = cfg.dim;
  const nh = cfg.n_heads;
  const dh = d / nh;
  const rows = batch * seq;
  const we = get(params, "distilbert.embeddings.word_embeddings.weight");
  const pe = get(params, "distilbert.embeddings.position_embeddings.weight");
  let x: Float64Array = new Float64Array(rows * d);
  for (let b = 0; b < batch; b++) {
    for (let s = 0; s < seq; s++) {
      const id = Number(ids[b * seq + s]);
      for (let i = 0; i < d; i++) x[(b * seq + s) * d + i] = we.data[id * d + i]! + pe.data[s * d + i]!;
    }
  }
  x = layerNorm(x, rows, d, get(params, "distilbert.embeddings.LayerNorm.weight"), get(params, "distilbert.embeddings.LayerNorm.bias"));

  for (let l = 0; l < cfg.n_layers; l++) {
    const p = (n: string) => get(params, `distilbert.transformer.layer.${l}.${n}`);
    const q = linear(x, rows, d, p("attention.q_lin.weight"), p("attention.q_lin.bias"));
    const k = linear(x, rows, d, p("attention.k_lin.weight"), p("attention.k_lin.bias"));
    const v = linear(x, rows, d, p("attention.v_lin.weight"), p("attention.v_lin.bias"));
    const ctx = new Float64Array(rows * d);
    const scores = new Float64Array(seq);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < nh; h++) {
        for (let i = 0; i < seq; i++) {
          let max = -Infinity;
          for (let j = 0; j < seq; j++) {
            let s = 0;
            for (let t = 0; t < dh; t++) s += q[(b * seq + i) * d + h * dh + t]! * k[(b * seq + j) * d + h * dh + t]!;
            s /= Math.sqrt(dh);
            // HF: masked_fill(mask == 0, torch.finfo(dtype).min) -> those keys get probability 0.
            if (Number(mask[b * seq + j]) === 0) s = -Infinity;
            scores[j] = s;
            if (s > max) max = s;
          }
          let z = 0;
          for (let j = 0; j < seq; j++) {
            // A fully masked row (no real token) is uniform in HF (all scores equal finfo.min).
            const e = max === -Infinity ? 1 : Math.exp(scores[j]! - max);
            scores[j] = e;
            z += e;
          }
          for (let t = 0; t < dh; t++) {
            let s = 0;
            for (let j = 0; j < seq; j++) s += (scores[j]! / z) * v[(b * seq + j) * d + h * dh + t]!;
            ctx[(b * seq + i) * d + h * dh + t] = s;
          }
        }
      }
    }
    const attnOut = linear(ctx, rows, d, p("attention.out_lin.weight"), p("attention.out_lin.bias"));
    for (let i = 0; i < attnOut.length; i++) attnOut[i]! += x[i]!;
    const sa = layerNorm(attnOut, rows, d, p("sa_layer_norm.weight"), p("sa_layer_norm.bias"));
    const h1 = linear(sa, rows, d, p("ffn.lin1.weight"), p("ffn.lin1.bias"));
    for (let i = 0; i < h1.length; i++) h1[i] = act(h1[i]!, cfg.activation);
    const h2 = linear(h1, rows, cfg.hidden_dim, p("ffn.lin2.weight"), p("ffn.lin2.bias"));
    for (let i = 0; i < h2.length; i++) h2[i]! += sa[i]!;
    x = layerNorm(h2, rows, d, p("output_layer_norm.weight"), p("output_layer_norm.bias"));
  }

  const cls = new Float64Array(batch * d);
  for (let b = 0; b < batch; b++) for (let i = 0; i < d; i++) cls[b * d + i] = x[b * seq * d + i]!;
  const pre = linear(cls, batch, d, get(params, "pre_classifier.weight"), get(params, "pre_classifier.bias"));
  for (let i = 0; i < pre.length; i++) pre[i] = Math.max(0, pre[i]!);
  const cw = get(params, "classifier.weight");
  const logits = linear(pre, batch, d, cw, get(params, "classifier.bias"));
  return { logits, numLabels: cw.shape[0]!, hidden: x };
}

/** Mean softmax cross-entropy in float64. */
export function referenceCrossEntropy(logits: Float64Array, numLabels: number, labels: ArrayLike<number>): number {
  const batch = logits.length / numLabels;
  let total = 0;
  for (let b = 0; b < batch; b++) {
    let max = -Infinity;
    for (let c = 0; c < numLabels; c++) max = Math.max(max, logits[b * numLabels + c]!);
    let z = 0;
    for (let c = 0; c < numLabels; c++) z += Math.exp(logits[b * numLabels + c]! - max);
    total += Math.log(z) + max - logits[b * numLabels + labels[b]!]!;
  }
  return total / batch;
}
