/**
 * The parameters of HF `DistilBertForSequenceClassification` for a config: names, PyTorch shapes (Linear
 * weights are [out, in]) and HF's initialisation (`_init_weights`: Linear/Embedding ~ normal(0,
 * initializer_range), biases 0, LayerNorm weight 1 / bias 0, the padding row of the word embeddings 0).
 */
import { createRng } from "../util/rng.js";
import { LenpredError } from "../util/errors.js";
import type { DistilBertConfig } from "./config.js";
import { numel, type NamedTensors } from "../engine/tensors.js";

export type InitKind = "normal" | "zeros" | "ones";
export interface ParamSpec {
  name: string;
  shape: number[];
  init: InitKind;
}

export const PREFIX = "distilbert.";

export function layerPrefix(i: number): string {
  return `${PREFIX}transformer.layer.${i}.`;
}

/** Every parameter in HF's order (embeddings, layers, head). */
export function paramSpecs(c: DistilBertConfig): ParamSpec[] {
  const d = c.dim;
  const specs: ParamSpec[] = [];
  const linear = (name: string, out: number, inp: number) => {
    specs.push({ name: `${name}.weight`, shape: [out, inp], init: "normal" }, { name: `${name}.bias`, shape: [out], init: "zeros" });
  };
  const norm = (name: string) => {
    specs.push({ name: `${name}.weight`, shape: [d], init: "ones" }, { name: `${name}.bias`, shape: [d], init: "zeros" });
  };
  specs.push({ name: `${PREFIX}embeddings.word_embeddings.weight`, shape: [c.vocab_size, d], init: "normal" });
  specs.push({ name: `${PREFIX}embeddings.position_embeddings.weight`, shape: [c.max_position_embeddings, d], init: "normal" });
  norm(`${PREFIX}embeddings.LayerNorm`);
  for (let i = 0; i < c.n_layers; i++) {
    const p = layerPrefix(i);
    for (const lin of ["q_lin", "k_lin", "v_lin", "out_lin"]) linear(`${p}attention.${lin}`, d, d);
    norm(`${p}sa_layer_norm`);
    linear(`${p}ffn.lin1`, c.hidden_dim, d);
    linear(`${p}ffn.lin2`, d, c.hidden_dim);
    norm(`${p}output_layer_norm`);
  }
  linear("pre_classifier", d, d);
  linear("classifier", c.num_labels, d);
  return specs;
}

export function countParams(c: DistilBertConfig): number {
  return paramSpecs(c).reduce((s, p) => s + numel(p.shape), 0);
}

/** Standard normal samples from the seeded RNG (Box–Muller, both outputs used). */
export function normalSampler(seed: number | string): () => number {
  const rng = createRng(seed);
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) { const s = spare; spare = undefined; return s; }
    let u = 0;
    while (u === 0) u = rng.next();
    const v = rng.next();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** Random parameters initialised as HF does, deterministic for a seed. */
export function initParams(c: DistilBertConfig, seed: number | string = 0, only?: (name: string) => boolean): NamedTensors {
  const normal = normalSampler(seed);
  const out: NamedTensors = new Map();
  for (const s of paramSpecs(c)) {
    if (only && !only(s.name)) continue;
    const data = new Float32Array(numel(s.shape));
    if (s.init === "ones") data.fill(1);
    else if (s.init === "normal") for (let i = 0; i < data.length; i++) data[i] = normal() * c.initializer_range;
    out.set(s.name, { shape: [...s.shape], data });
  }
  // nn.Embedding(padding_idx=pad_token_id): HF zeroes that row at init.
  const we = out.get(`${PREFIX}embeddings.word_embeddings.weight`);
  if (we && c.pad_token_id >= 0 && c.pad_token_id < c.vocab_size) we.data.fill(0, c.pad_token_id * c.dim, (c.pad_token_id + 1) * c.dim);
  return out;
}

/** Check that `params` has exactly the config's parameters with the right shapes. */
export function validateParams(c: DistilBertConfig, params: NamedTensors, file?: string): void {
  for (const s of paramSpecs(c)) {
    const t = params.get(s.name);
    if (!t) throw new LenpredError(`missing parameter (expected shape ${JSON.stringify(s.shape)})`, { file, field: s.name });
    if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) {
      throw new LenpredError(`shape ${JSON.stringify(t.shape)} does not match the config's ${JSON.stringify(s.shape)}`, { file, field: s.name });
    }
    if (t.data.length !== numel(s.shape)) throw new LenpredError(`has ${t.data.length} values, expected ${numel(s.shape)}`, { file, field: s.name });
  }
}
