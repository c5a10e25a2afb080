/**
 * The three output heads and how their outputs map to tokens. All heads share HF's classifier shape
 * ([num_labels, dim]); they differ in the loss and the meaning of the outputs:
 * - classification: num_labels = bucket count, softmax cross-entropy on the bucket index;
 * - regression: num_labels = 1, MSE on log1p(output tokens);
 * - quantile: num_labels = #levels, pinball loss on log1p(output tokens) at each level.
 * `LabeledBatch.targets` for regression/quantile are already log1p(tokens) (`regressionTarget`).
 */
import type { BucketScheme } from "../data/buckets.js";
import { LenpredError } from "../util/errors.js";
import type { DistilBertConfig, HeadKind } from "./config.js";

export function regressionTarget(tokens: number): number {
  return Math.log1p(tokens);
}

/** Inverse of `regressionTarget`, clamped at 0 tokens. */
export function tokensFromOutput(value: number): number {
  return Math.max(0, Math.expm1(value));
}

/** Output width for a head. */
export function headOutputs(head: HeadKind, buckets: BucketScheme, quantiles?: number[]): number {
  if (head === "classification") return buckets.edges.length;
  if (head === "regression") return 1;
  if (!quantiles || quantiles.length === 0) throw new LenpredError("the quantile head needs at least one quantile level", { field: "quantiles" });
  return quantiles.length;
}

export function validateHead(c: DistilBertConfig, file?: string): void {
  if (c.head === "regression" && c.num_labels !== 1) throw new LenpredError(`regression head needs num_labels 1, got ${c.num_labels}`, { file, field: "num_labels" });
  if (c.head === "quantile") {
    const q = c.quantiles;
    if (!Array.isArray(q) || q.length !== c.num_labels || !q.every((x) => typeof x === "number" && x > 0 && x < 1)) {
      throw new LenpredError(`quantile head needs ${c.num_labels} levels in (0, 1), got ${JSON.stringify(q)}`, { file, field: "quantiles" });
    }
  }
}

/** HF `id2label` names: bucket token ranges, or the regression/quantile output names. */
export function labelNames(c: DistilBertConfig, buckets?: BucketScheme): string[] {
  if (c.head === "regression") return ["log1p_tokens"];
  if (c.head === "quantile") return (c.quantiles ?? []).map((q) => `q${q}`);
  if (buckets && buckets.edges.length === c.num_labels) {
    const n = buckets.edges.length;
    return buckets.edges.map((e, i) => {
      const lo = i === 0 ? 0 : buckets.edges[i - 1]!;
      return i === n - 1 ? `${lo}+` : `${lo}-${e - 1}`;
    });
  }
  return Array.from({ length: c.num_labels }, (_, i) => `LABEL_${i}`);
}
