/**
 * DistilBERT configuration with the field names of HF `config.json`, plus the sizes lenpred trains from
 * scratch. `head` is lenpred's own field (classification over buckets, regression on log length, quantiles).
 */
import { LenpredError } from "../util/errors.js";

export type HeadKind = "classification" | "regression" | "quantile";

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
  if (!["classification", "regression", "quantile"].includes(c.head)) throw new LenpredError(`unknown head ${JSON.stringify(c.head)}`, { file, field: "head" });
  return c;
}
