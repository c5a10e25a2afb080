/**
 * The inference export: `model.onnx` for plain onnxruntime-node (or any ONNX runtime), standard opset-20 ops
 * only (unless `form: "contrib"` or `quantize`), graph from inference-graph.ts; `opset: 17` lowers it for older
 * runtimes and checkers (Gelu decomposed, onnx-opset.ts). producer_name "lenpred", producer_version its version. Inputs `input_ids` and
 * `attention_mask` are int64 [batch, sequence] with both axes dynamic; the output is `logits`
 * [batch, num_labels]. The weights are initializers under their HF names, as float32, or as float16 followed
 * by a Cast (half the file; ORT folds the casts when the session is created, so inference runs in float32 on
 * the float16-rounded weights, exactly what an F16 model.safetensors holds).
 */
import { ONNX_ATTENTION_MASK, ONNX_INPUT_IDS, ONNX_OUTPUT } from "../model-dir/index.js";
import { Graph, type ConstData, type Tensor, type TypedData } from "../engine/graph.js";
import * as op from "../engine/ops.js";
import { writeFileAtomic } from "../util/atomic.js";
import { LenpredError } from "../util/errors.js";
import type { DistilBertConfig } from "./config.js";
import { buildForward } from "./distilbert-forward.js";
import { buildInferenceForward, type InferenceGraphOptions } from "./inference-graph.js";
import { f32ToF16Bits } from "./half.js";
import { externalizeInitializers, type ExternalRef } from "./onnx-external.js";
import { EXPORT_OPSETS, lowerGraph, type ExportOpset } from "./onnx-opset.js";
import { LENPRED_VERSION } from "../util/version.js";
import type { SafetensorsHeader } from "./safetensors.js";
import { validateParams } from "./params.js";
import type { NamedTensors } from "../engine/tensors.js";

export interface ExportOptions {
  /** Initializer storage (default float32). */
  weights?: "float32" | "float16";
  /**
   * Read the weights from a safetensors file beside model.onnx instead of embedding them (ONNX external
   * data). Its tensors must be stored as `weights` says (F32 for float32, F16 for float16). ORT then needs
   * the model loaded from its path, with that file next to it.
   */
  external?: { location: string; header: SafetensorsHeader };
  /**
   * "int8": the encoder's Linear layers become onnxruntime's `com.microsoft.DynamicQuantizeMatMul` with int8
   * weights (symmetric, one scale per output channel, see `int8Weights`) and activations quantized per run: 2–3× faster
   * matmuls on CPUs with VNNI, a quarter of the weight bytes, logits within ~1e-2 instead of 1e-4.
   * Embeddings, LayerNorms and the classification head stay in `weights` precision. Not with `external`.
   */
  quantize?: "int8";
  /**
   * int8 weight encoding. onnxruntime quantizes activations to uint8 [0, 255]; on x64 CPUs without VNNI
   * (AVX2, AVX-512 without VNNI) its u8·s8 kernels add the products of two adjacent inputs into an int16
   * with saturation (vpmaddubsw), so full-range int8 weights overflow there (logits off by 0.23 on Zen 3).
   * "s7" (default): int8 weights in [-64, 64], 255·64·2 ≤ 32767, exact on every CPU and as fast as "s8";
   * twice the weight rounding step. "u8": the 8-bit weights as uint8 with zero point 128, exact everywhere
   * (u8·u8 kernels widen first) but without VNNI, ~1.75× slower here. "s8": [-127, 127], the export before
   * 2026-11-30, correct only with VNNI (benchmarks). Measured in docs/model.md.
   */
  int8Weights?: Int8Weights;
  /**
   * Graph form for float32/float16 (int8 always uses "engine"). "inference" (default): standard ops, the
   * last layer without key/value projections (inference-graph.ts; ~3% fewer FLOPs, same logits).
   * "contrib": the same with onnxruntime's com.microsoft Attention/BiasGelu (needs onnxruntime; measured no
   * faster here). "engine": distilbert-forward.ts's forward, the training graph without dropout (the export before 2026-11-25).
   */
  form?: "inference" | "contrib" | "engine";
  /**
   * Target ONNX opset (default 20, IR 9). 17 (IR 8) decomposes Gelu into Erf arithmetic, for onnxruntime < 1.16,
   * ONNX 1.12 checkers (Debian's python3-onnx) and converters that stop at 17; same logits within float rounding.
   */
  opset?: ExportOpset;
  /** Benchmarking only: ablations of the inference form (inference-graph.ts). */
  inference?: Omit<InferenceGraphOptions, "contrib">;
}

/** An encoder Linear (attention projections and FFN), the ones int8 export quantizes. */
const QUANTIZABLE = /^distilbert\.transformer\.layer\.\d+\.(attention\.(q|k|v|out)_lin|ffn\.lin[12])$/;

export type Int8Weights = "u8" | "s7" | "s8";

/**
 * Symmetric per-output-channel quantization of a PyTorch [out, in] weight to integers in [-qmax, qmax]
 * (127: 8 bits; 64: 7 bits), returned as [in, out].
 */
export function quantizeWeightInt8(w: Float32Array, out: number, inp: number, qmax = 127): { q: Int8Array; scale: Float32Array } {
  const q = new Int8Array(out * inp);
  const scale = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    let m = 0;
    for (let i = 0; i < inp; i++) m = Math.max(m, Math.abs(w[o * inp + i]!));
    const s = m > 0 ? m / qmax : 1;
    scale[o] = s;
    for (let i = 0; i < inp; i++) q[i * out + o] = Math.max(-qmax, Math.min(qmax, Math.round(w[o * inp + i]! / s)));
  }
  return { q, scale };
}

/** The uint8 form of symmetric int8 weights: q + 128 with zero point 128 (the same real values). */
export function int8ToU8(q: Int8Array): Uint8Array {
  const u = new Uint8Array(q.length);
  for (let i = 0; i < q.length; i++) u[i] = q[i]! + 128;
  return u;
}

export function buildInferenceOnnx(config: DistilBertConfig, params: NamedTensors, opts: ExportOptions = {}): Uint8Array {
  validateParams(config, params);
  const g = new Graph("distilbert_sequence_classification");
  const ids = g.input(ONNX_INPUT_IDS, "int64", ["batch", "sequence"]);
  const mask = g.input(ONNX_ATTENTION_MASK, "int64", ["batch", "sequence"]);
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
  if (opts.quantize && opts.external) throw new LenpredError("int8 export cannot share weights with model.safetensors");
  const linear = opts.quantize !== "int8" ? undefined : (x: Tensor, name: string): Tensor | undefined => {
    if (!QUANTIZABLE.test(name)) return undefined;
    const w = params.get(`${name}.weight`)!;
    const [out, inp] = w.shape as [number, number];
    const enc = opts.int8Weights ?? "s7";
    const { q, scale } = quantizeWeightInt8(w.data, out, inp, enc === "s7" ? 64 : 127);
    const sc = g.initializer(`${name}.weight_scale`, { dtype: "float32", shape: [out], data: scale });
    const shape = [...x.shape.slice(0, -1), out];
    const [qw, zp] = enc === "u8"
      ? [g.initializer(`${name}.weight_uint8`, { dtype: "uint8", shape: [inp, out], data: int8ToU8(q) }),
        g.initializer(`${name}.weight_zero_point`, { dtype: "uint8", shape: [out], data: new Uint8Array(out).fill(128) })]
      : [g.initializer(`${name}.weight_int8`, { dtype: "int8", shape: [inp, out], data: q }), undefined];
    return g.node("DynamicQuantizeMatMul", [x, qw, sc, zp, param(`${name}.bias`)], [{ dtype: "float32", shape }], {}, "com.microsoft")[0]!;
  };
  const form = linear ? "engine" : opts.form ?? "inference";
  const { logits } = form === "engine"
    ? buildForward(g, config, param, ids, mask, { training: false, linear })
    : buildInferenceForward(g, config, param, ids, mask, { ...opts.inference, contrib: form === "contrib" });
  g.output(ONNX_OUTPUT, logits);
  const opset = opts.opset ?? 20;
  if (!EXPORT_OPSETS.includes(opset)) throw new LenpredError(`ONNX opset ${String(opset)} is not supported (${EXPORT_OPSETS.join(" or ")})`, { field: "opset" });
  const bytes = lowerGraph(g, opset).toOnnx({ producer: "lenpred", producerVersion: LENPRED_VERSION, opset });
  if (!opts.external) return bytes;
  const want = opts.weights === "float16" ? "F16" : "F32";
  const refs = new Map<string, ExternalRef>();
  for (const e of opts.external.header.entries) {
    if (!cache.has(e.name)) continue; // not in the graph (e.g. the last layer's k_lin.bias, which softmax ignores)
    if (e.dtype !== want) throw new LenpredError(`stored as ${e.dtype}, but the ONNX export wants ${want} to share the bytes`, { file: opts.external.location, field: e.name });
    refs.set(opts.weights === "float16" ? `${e.name}_fp16` : e.name, { location: opts.external.location, offset: opts.external.header.dataStart + e.begin, length: e.end - e.begin });
  }
  return externalizeInitializers(bytes, refs);
}

export async function exportInferenceOnnx(config: DistilBertConfig, params: NamedTensors, path: string, opts: ExportOptions = {}): Promise<void> {
  await writeFileAtomic(path, buildInferenceOnnx(config, params, opts));
}
