/**
 * The inference export: `model.onnx` for plain onnxruntime-node (or any ONNX runtime), standard opset-20 ops
 * only. Inputs `input_ids` and `attention_mask` are int64 [batch, sequence] with both axes dynamic; the output
 * is `logits` [batch, num_labels]. The weights are initializers under their HF names, as float32, or as
 * float16 followed by a Cast (half the file; ORT folds the casts when the session is created, so inference
 * runs in float32 on the float16-rounded weights, exactly what an F16 model.safetensors holds).
 */
import { Graph, type ConstData, type TypedData } from "../engine/graph.js";
import * as op from "../engine/ops.js";
import { writeFileAtomic } from "../util/atomic.js";
import type { DistilBertConfig } from "./config.js";
import { buildForward } from "./graph.js";
import { f32ToF16Bits } from "./half.js";
import { validateParams } from "./params.js";
import type { NamedTensors } from "./tensors.js";

export interface ExportOptions {
  /** Initializer storage (default float32). */
  weights?: "float32" | "float16";
}

export const ONNX_INPUTS = ["input_ids", "attention_mask"] as const;
export const ONNX_OUTPUT = "logits";

export function buildInferenceOnnx(config: DistilBertConfig, params: NamedTensors, opts: ExportOptions = {}): Uint8Array {
  validateParams(config, params);
  const g = new Graph("distilbert_sequence_classification");
  const ids = g.input("input_ids", "int64", ["batch", "sequence"]);
  const mask = g.input("attention_mask", "int64", ["batch", "sequence"]);
  const cache = new Map<string, ReturnType<Graph["initializer"]>>();
  const param = (name: string) => {
    let t = cache.get(name);
    if (!t) {
      const p = params.get(name)!;
      if (opts.weights === "float16") {
        const bits = new Uint16Array(p.data.length);
        for (let i = 0; i < bits.length; i++) bits[i] = f32ToF16Bits(p.data[i]!);
        // The graph's serializer writes the raw bytes of any typed array; float16 has no JS array type in Node 20.
        const data: ConstData = { dtype: "float16", shape: p.shape, data: bits as unknown as TypedData };
        t = op.cast(g.initializer(`${name}_fp16`, data), "float32");
      } else {
        t = g.initializer(name, { dtype: "float32", shape: p.shape, data: p.data });
      }
      cache.set(name, t);
    }
    return t;
  };
  const { logits } = buildForward(g, config, param, ids, mask, { training: false });
  g.output("logits", logits);
  return g.toOnnx({ producer: "lenpred" });
}

export async function exportInferenceOnnx(config: DistilBertConfig, params: NamedTensors, path: string, opts: ExportOptions = {}): Promise<void> {
  await writeFileAtomic(path, buildInferenceOnnx(config, params, opts));
}
