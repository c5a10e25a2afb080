/**
 * Hardware/model profiles for `lenpred simulate`: what one GPU can hold (KV-cache capacity) and how fast it
 * moves bytes and does FLOPs. Presets cover the S³ setup (GPT-J-6B fp16 on one A100-80GB) and 7B Llama-family
 * models; every field can be overridden for a custom profile.
 */
import { LenpredError } from "../util/errors.js";

export interface ModelSpec {
  name: string;
  layers: number;
  /** Query heads (attention FLOPs scale with heads × headDim = hidden size). */
  heads: number;
  /** Key/value heads (KV size scales with these; < heads for grouped-query attention). */
  kvHeads: number;
  headDim: number;
  /** Bytes per KV element and per weight (2 for fp16/bf16). */
  dtypeBytes: number;
  /** Total bytes of weights read once per iteration. */
  weightBytes: number;
  /** Longest sequence (prompt + output) the model serves: what max-length reservation reserves. */
  maxSeqLen: number;
}

export interface GpuSpec {
  name: string;
  memoryBytes: number;
  /** Peak HBM bandwidth, bytes/s. */
  hbmBytesPerS: number;
  /** Peak dense fp16 tensor FLOP/s. */
  peakFlops: number;
}

/** Knobs of the step-time model that are assumptions rather than datasheet numbers (see docs/simulate.md). */
export interface EfficiencySpec {
  /** Fraction of GPU memory the engine may use (weights + KV), like vLLM's gpu_memory_utilization. */
  memUtil: number;
  /** Achieved / peak HBM bandwidth. */
  bwEfficiency: number;
  /** Achieved / peak FLOP/s (model FLOPs utilisation). */
  flopsEfficiency: number;
  /** Fixed per-iteration cost (kernel launches, sampling, scheduling), seconds. */
  iterOverheadS: number;
}

export interface SimProfile { model: ModelSpec; gpu: GpuSpec; eff: EfficiencySpec }

const GB = 1e9;
const GiB = 2 ** 30;

const MODEL_PRESETS: Record<string, ModelSpec> = {
  // EleutherAI GPT-J-6B: 28 layers, d_model 4096 = 16 heads × 256, 6,053,381,344 parameters, context 2048.
  "gpt-j-6b": { name: "gpt-j-6b", layers: 28, heads: 16, kvHeads: 16, headDim: 256, dtypeBytes: 2, weightBytes: 6_053_381_344 * 2, maxSeqLen: 2048 },
  // Llama-2-7B: 32 layers, 32 heads × 128, 6,738,415,616 parameters, context 4096.
  "llama-2-7b": { name: "llama-2-7b", layers: 32, heads: 32, kvHeads: 32, headDim: 128, dtypeBytes: 2, weightBytes: 6_738_415_616 * 2, maxSeqLen: 4096 },
  // Vicuna-7B v1.5 is a Llama-2-7B fine-tune: same shapes and context.
  "vicuna-7b": { name: "vicuna-7b", layers: 32, heads: 32, kvHeads: 32, headDim: 128, dtypeBytes: 2, weightBytes: 6_738_415_616 * 2, maxSeqLen: 4096 },
};

const GPU_PRESETS: Record<string, GpuSpec> = {
  // A100 SXM4 80GB: 2,039 GB/s HBM2e, 312 TFLOP/s dense fp16 tensor.
  "a100-80gb": { name: "a100-80gb", memoryBytes: 80 * GiB, hbmBytesPerS: 2039 * GB, peakFlops: 312e12 },
  // A100 SXM4 40GB: 1,555 GB/s HBM2.
  "a100-40gb": { name: "a100-40gb", memoryBytes: 40 * GiB, hbmBytesPerS: 1555 * GB, peakFlops: 312e12 },
};

const DEFAULT_EFFICIENCY: EfficiencySpec = { memUtil: 0.9, bwEfficiency: 0.8, flopsEfficiency: 0.6, iterOverheadS: 0.001 };

/** Overrides from the command line; undefined = keep the preset value. */
export interface ProfileOverrides {
  layers?: number; heads?: number; kvHeads?: number; headDim?: number; dtypeBytes?: number; weightBytes?: number;
  maxSeqLen?: number; gpuMemoryBytes?: number; hbmBytesPerS?: number; peakFlops?: number;
  memUtil?: number; bwEfficiency?: number; flopsEfficiency?: number; iterOverheadS?: number;
}

export function buildProfile(model: string, gpu: string, o: ProfileOverrides = {}): SimProfile {
  const m = MODEL_PRESETS[model];
  if (!m) throw new LenpredError(`unknown model preset '${model}' (known: ${Object.keys(MODEL_PRESETS).join(", ")})`, { field: "model" });
  const g = GPU_PRESETS[gpu];
  if (!g) throw new LenpredError(`unknown GPU preset '${gpu}' (known: ${Object.keys(GPU_PRESETS).join(", ")})`, { field: "gpu" });
  const heads = o.heads ?? m.heads;
  const p: SimProfile = {
    model: {
      name: m.name, layers: o.layers ?? m.layers, heads, kvHeads: o.kvHeads ?? m.kvHeads, headDim: o.headDim ?? m.headDim,
      dtypeBytes: o.dtypeBytes ?? m.dtypeBytes, weightBytes: o.weightBytes ?? m.weightBytes, maxSeqLen: o.maxSeqLen ?? m.maxSeqLen,
    },
    gpu: { name: g.name, memoryBytes: o.gpuMemoryBytes ?? g.memoryBytes, hbmBytesPerS: o.hbmBytesPerS ?? g.hbmBytesPerS, peakFlops: o.peakFlops ?? g.peakFlops },
    eff: {
      memUtil: o.memUtil ?? DEFAULT_EFFICIENCY.memUtil, bwEfficiency: o.bwEfficiency ?? DEFAULT_EFFICIENCY.bwEfficiency,
      flopsEfficiency: o.flopsEfficiency ?? DEFAULT_EFFICIENCY.flopsEfficiency, iterOverheadS: o.iterOverheadS ?? DEFAULT_EFFICIENCY.iterOverheadS,
    },
  };
  if (Object.keys(o).some((k) => o[k as keyof ProfileOverrides] !== undefined)) {
    p.model.name += "+custom";
  }
  validateProfile(p);
  return p;
}

export function validateProfile(p: SimProfile): void {
  const ints: [string, number][] = [["layers", p.model.layers], ["heads", p.model.heads], ["kv-heads", p.model.kvHeads],
    ["head-dim", p.model.headDim], ["dtype-bytes", p.model.dtypeBytes], ["max-seq-len", p.model.maxSeqLen]];
  for (const [f, v] of ints) if (!(Number.isInteger(v) && v > 0)) throw new LenpredError(`must be a positive integer, got ${v}`, { field: f });
  const pos: [string, number][] = [["weight-gb", p.model.weightBytes], ["gpu-mem-gib", p.gpu.memoryBytes],
    ["hbm-gbps", p.gpu.hbmBytesPerS], ["tflops", p.gpu.peakFlops]];
  for (const [f, v] of pos) if (!(Number.isFinite(v) && v > 0)) throw new LenpredError(`must be a positive number, got ${v}`, { field: f });
  const fr: [string, number][] = [["mem-util", p.eff.memUtil], ["bw-efficiency", p.eff.bwEfficiency], ["flops-efficiency", p.eff.flopsEfficiency]];
  for (const [f, v] of fr) if (!(Number.isFinite(v) && v > 0 && v <= 1)) throw new LenpredError(`must be in (0, 1], got ${v}`, { field: f });
  if (!(Number.isFinite(p.eff.iterOverheadS) && p.eff.iterOverheadS >= 0)) throw new LenpredError(`must be >= 0, got ${p.eff.iterOverheadS}`, { field: "iter-overhead-ms" });
  if (p.model.kvHeads > p.model.heads) throw new LenpredError(`kv-heads ${p.model.kvHeads} exceeds heads ${p.model.heads}`, { field: "kv-heads" });
  if (kvCapacityTokens(p) < p.model.maxSeqLen) {
    const free = p.gpu.memoryBytes * p.eff.memUtil - p.model.weightBytes;
    throw new LenpredError(
      `KV cache holds ${kvCapacityTokens(p)} tokens (${(free / 1e9).toFixed(2)} GB after weights), less than one max-length sequence (${p.model.maxSeqLen} tokens)`,
      { field: "gpu-mem-gib" });
  }
}

/** Bytes of K and V for one token across all layers: 2 × layers × kvHeads × headDim × dtypeBytes. */
export function kvBytesPerToken(p: SimProfile): number {
  return 2 * p.model.layers * p.model.kvHeads * p.model.headDim * p.model.dtypeBytes;
}

/** Tokens of KV cache that fit: (memory × memUtil − weights) / kvBytesPerToken, floored. */
export function kvCapacityTokens(p: SimProfile): number {
  const free = p.gpu.memoryBytes * p.eff.memUtil - p.model.weightBytes;
  return free <= 0 ? 0 : Math.floor(free / kvBytesPerToken(p));
}

/** Parameter count implied by the weight size (used for the 2 × params FLOPs per token). */
export function paramCount(p: SimProfile): number {
  return p.model.weightBytes / p.model.dtypeBytes;
}

export function describeProfile(p: SimProfile): Record<string, unknown> {
  return {
    model: p.model, gpu: p.gpu, efficiency: p.eff,
    kv_bytes_per_token: kvBytesPerToken(p),
    kv_capacity_tokens: kvCapacityTokens(p),
    max_length_batch: Math.floor(kvCapacityTokens(p) / p.model.maxSeqLen),
  };
}
