/** Named float tensors: the exchange format between the engine, checkpoints (safetensors) and exports. */
export interface FloatTensor {
  shape: number[];
  data: Float32Array;
}

/** Keyed by HF parameter name, e.g. `distilbert.transformer.layer.0.attention.q_lin.weight`. */
export type NamedTensors = Map<string, FloatTensor>;

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
