/**
 * DistilBERT configuration with the field names of HF `config.json`, plus the sizes lenpred trains from
 * scratch. `head` is lenpred's own field (classification over buckets, regression on log length, quantiles).
 */
import { totalmem } from "node:os";
import { LenpredError } from "../util/errors.js";

/** The output heads, the one list every reader and the CLI check against. */
export const HEAD_KINDS = ["classification", "regression", "quantile"] as const;
export type HeadKind = (typeof HEAD_KINDS)[number];

export interface DistilBertConfig {
  vocab_size: number;
  dim: number;
  n_layers: number;
  n_heads: number;
  hidden_dim: number;
  max_position_embeddings: number;
  dropout: number;
  attention_dropout: number;
  seq_classif_dropout: number;
  activation: "gelu" | "relu";
  /** Output width of the classifier: bucket count (classification), 1 (regression) or #quantiles. */
  num_labels: number;
  head: HeadKind;
  /** Quantile levels for the quantile head. */
  quantiles?: number[];
  pad_token_id: number;
  initializer_range: number;
}

const BASE: DistilBertConfig = {
  vocab_size: 30522, dim: 768, n_layers: 6, n_heads: 12, hidden_dim: 3072, max_position_embeddings: 512,
  dropout: 0.1, attention_dropout: 0.1, seq_classif_dropout: 0.2, activation: "gelu",
  num_labels: 8, head: "classification", pad_token_id: 0, initializer_range: 0.02,
};

export const PRESETS: Record<string, DistilBertConfig> = {
  base: BASE,
  small: { ...BASE, dim: 256, n_layers: 4, n_heads: 4, hidden_dim: 1024 },
  tiny: { ...BASE, dim: 128, n_layers: 2, n_heads: 2, hidden_dim: 512 },
};

/** Validate an HF-style config object (from config.json) and fill lenpred defaults. */
export function parseConfig(raw: unknown, file?: string): DistilBertConfig {
  if (!raw || typeof raw !== "object") throw new LenpredError("config must be a JSON object", { file });
  const r = raw as Record<string, unknown>;
  const c = { ...BASE, ...r } as DistilBertConfig & { id2label?: Record<string, string> };
  if (r.num_labels === undefined && r.id2label && typeof r.id2label === "object") c.num_labels = Object.keys(r.id2label).length;
  for (const f of ["vocab_size", "dim", "n_layers", "n_heads", "hidden_dim", "max_position_embeddings", "num_labels"] as const) {
    if (!Number.isInteger(c[f]) || c[f] <= 0) throw new LenpredError(`must be a positive integer, got ${JSON.stringify(c[f])}`, { file, field: f });
  }
  for (const f of ["dropout", "attention_dropout", "seq_classif_dropout"] as const) {
    if (typeof c[f] !== "number" || c[f] < 0 || c[f] >= 1) throw new LenpredError(`must be in [0, 1), got ${JSON.stringify(c[f])}`, { file, field: f });
  }
  if (c.dim % c.n_heads !== 0) throw new LenpredError(`dim ${c.dim} is not divisible by n_heads ${c.n_heads}`, { file, field: "n_heads" });
  if (c.activation !== "gelu" && c.activation !== "relu") throw new LenpredError(`unsupported activation ${JSON.stringify(c.activation)}`, { file, field: "activation" });
  if (!(HEAD_KINDS as readonly string[]).includes(c.head)) throw new LenpredError(`unknown head ${JSON.stringify(c.head)}`, { file, field: "head" });
  return c;
}

/**
 * Parameter count in closed form. (`paramSpecs` materialises one object per tensor: a config with
 * n_layers 1e6 would allocate gigabytes just to be counted.)
 */
export function parameterCount(c: DistilBertConfig): number {
  const d = c.dim;
  const layer = 4 * (d * d + d) + 2 * d + (c.hidden_dim * d + c.hidden_dim) + (d * c.hidden_dim + d) + 2 * d;
  return (c.vocab_size + c.max_position_embeddings) * d + 2 * d + c.n_layers * layer + (d * d + d) + (c.num_labels * d + c.num_labels);
}

/** ONNX stores a tensor in one protobuf message, which cannot exceed 2 GB. */
export const MAX_TENSOR_BYTES = 2 ** 31 - 1;

/** What a size check estimates for: loading the weights, or training them with this batch shape. */
export interface MemoryCheck {
  /** Refuse above this many bytes (default: the machine's physical memory, os.totalmem()). */
  maxBytes?: number;
  /** Training: prompts per step and tokens per prompt (activations); omit for loading/inference. */
  training?: { batchSize: number; seqLen: number };
  /** Where the config came from, for the error. */
  file?: string;
  /** The knob that raises the cap, named in the error (e.g. "--max-memory"). */
  knob?: string;
}

/**
 * Rough peak memory in bytes. Loading: the float32 weights about 3× (JS copy, decoded file, onnxruntime
 * session). Training: weights, gradients, AdamW moments and the session's copies (≈ 6 float32 per parameter)
 * plus activations kept for the backward pass (per layer ≈ 12·dim + 2·hidden_dim floats per token and
 * 3 attention maps of seq² per head). Deliberately an over- rather than under-estimate.
 */
export function estimateMemoryBytes(c: DistilBertConfig, training?: MemoryCheck["training"]): number {
  const params = parameterCount(c);
  if (!training) return 3 * 4 * params;
  const { batchSize: b, seqLen: s } = training;
  const perLayer = b * s * (12 * c.dim + 2 * c.hidden_dim) + 3 * b * c.n_heads * s * s;
  return 6 * 4 * params + 4 * (c.n_layers * perLayer + b * s * c.dim * 4);
}

/**
 * Refuse a configuration before anything is allocated: tensors ONNX/typed arrays cannot hold, and a memory
 * estimate above the cap (a typo like `n_layers: 1000000` otherwise allocates until the machine swaps).
 */
export function checkModelSize(c: DistilBertConfig, opts: MemoryCheck = {}): void {
  const { file } = opts;
  const tensors: [string, number][] = [
    ["vocab_size", c.vocab_size], ["max_position_embeddings", c.max_position_embeddings], ["dim", c.dim],
    ["hidden_dim", c.hidden_dim], ["num_labels", c.num_labels],
  ];
  for (const [field, rows] of tensors) {
    const bytes = 4 * rows * c.dim;
    if (bytes > MAX_TENSOR_BYTES) {
      throw new LenpredError(`${field} ${rows} × dim ${c.dim} gives a ${fmtBytes(bytes)} weight matrix; one tensor is limited to 2 GB (ONNX)`, { file, field });
    }
  }
  const maxBytes = opts.maxBytes ?? totalmem();
  const need = estimateMemoryBytes(c, opts.training);
  if (need > maxBytes) {
    throw new LenpredError(
      `${c.n_layers} layers × dim ${c.dim} (ffn ${c.hidden_dim}, vocab ${c.vocab_size}) = ${fmtCount(parameterCount(c))} parameters need about ` +
      `${fmtBytes(need)} to ${opts.training ? `train (batch ${opts.training.batchSize} × ${opts.training.seqLen} tokens)` : "load"}, more than the ` +
      `${fmtBytes(maxBytes)} allowed${opts.maxBytes === undefined ? " (this machine's memory)" : ""}${opts.knob ? `; raise it with ${opts.knob} if this is intended` : ""}`,
      { file },
    );
  }
}

export function fmtBytes(n: number): string {
  if (n >= 2 ** 40) return `${(n / 2 ** 40).toFixed(1)} TB`;
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GB` : `${(n / 2 ** 20).toFixed(1)} MB`;
}

function fmtCount(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)} B` : `${(n / 1e6).toFixed(1)} M`;
}
