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
import { LenpredError } from "../util/errors.js";
import type { DistilBertConfig } from "./config.js";
import { buildForward } from "./graph.js";
import { f32ToF16Bits } from "./half.js";
import { externalizeInitializers, type ExternalRef } from "./onnx-external.js";
import type { SafetensorsHeader } from "./safetensors.js";
import { validateParams } from "./params.js";
import type { NamedTensors } from "./tensors.js";

export interface ExportOptions {
  /** Initializer storage (default float32). */
  weights?: "float32" | "float16";
  /**
   * Read the weights from a safetensors file beside model.onnx instead of embedding them (ONNX external
   * data). Its tensors must be stored as `weights` says (F32 for float32, F16 for float16). ORT then needs
   * the model loaded from its path, with that file next to it.
   */
  external?: { location: string; header: SafetensorsHeader };
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
  const bytes = g.toOnnx({ producer: "lenpred" });
  if (!opts.external) return bytes;
  const want = opts.weights === "float16" ? "F16" : "F32";
  const refs = new Map<string, ExternalRef>();
  for (const e of opts.external.header.entries) {
    if (!params.has(e.name)) continue;
    if (e.dtype !== want) throw new LenpredError(`stored as ${e.dtype}, but the ONNX export wants ${want} to share the bytes`, { file: opts.external.location, field: e.name });
    refs.set(opts.weights === "float16" ? `${e.name}_fp16` : e.name, { location: opts.external.location, offset: opts.external.header.dataStart + e.begin, length: e.end - e.begin });
  }
  return externalizeInitializers(bytes, refs);
}

export async function exportInferenceOnnx(config: DistilBertConfig, params: NamedTensors, path: string, opts: ExportOptions = {}): Promise<void> {
  await writeFileAtomic(path, buildInferenceOnnx(config, params, opts));
}
