/**
 * A thin wrapper over onnxruntime-node's InferenceSession with the settings that matter on a small CPU box:
 * intra-op threads (default 2), spinning off (spinning makes 2 busy-waiting threads slower than 1 on a shared
 * machine), graph optimisation level, and the execution provider (cpu, or cuda when a user has a GPU).
 */
import ort from "onnxruntime-node";
import { LenpredError } from "../util/errors.js";
import type { ConstData, DType, TypedData } from "./graph.js";

export type OrtTensor = ort.Tensor;
export { ort };

export interface SessionOptions {
  /** Intra-op threads (default 2). */
  threads?: number;
  /** Inter-op threads (default 1; the engine's graphs are mostly sequential). */
  interOpThreads?: number;
  /** Let idle ORT threads spin (default false). */
  spinning?: boolean;
  /** Graph optimisation level (default "all"). */
  optimization?: "disabled" | "basic" | "extended" | "all";
  /** Execution providers in preference order (default ["cpu"]). */
  executionProviders?: ("cpu" | "cuda")[];
  /** Write the optimised model ORT actually runs to this path (debugging). */
  optimizedModelPath?: string;
  /** Write an ORT profile (JSON trace, per-node timings) with this file prefix; call `endProfiling()`. */
  profilePrefix?: string;
  /** ORT log severity 0 (verbose) .. 4 (fatal); default 3. */
  logSeverity?: 0 | 1 | 2 | 3 | 4;
}

export function ortSessionOptions(o: SessionOptions = {}): ort.InferenceSession.SessionOptions {
  const threads = o.threads ?? 2;
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: o.interOpThreads ?? 1,
    executionMode: "sequential",
    graphOptimizationLevel: o.optimization ?? "all",
    executionProviders: o.executionProviders ?? ["cpu"],
    logSeverityLevel: o.logSeverity ?? 3,
    ...(o.optimizedModelPath ? { optimizedModelFilePath: o.optimizedModelPath } : {}),
    ...(o.profilePrefix ? { enableProfiling: true, profileFilePrefix: o.profilePrefix } : {}),
    extra: { session: { intra_op: { allow_spinning: o.spinning ? "1" : "0" }, inter_op: { allow_spinning: o.spinning ? "1" : "0" } } },
  };
}

export type Feeds = Record<string, ort.Tensor>;

export class Session {
  private constructor(
    readonly inner: ort.InferenceSession,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
  ) {}

  /** Create from serialized ONNX bytes (`graph.toOnnx()`) or a model file path. */
  static async create(model: Uint8Array | string, opts: SessionOptions = {}): Promise<Session> {
    let s: ort.InferenceSession;
    try {
      s = typeof model === "string" ? await ort.InferenceSession.create(model, ortSessionOptions(opts)) : await ort.InferenceSession.create(model, ortSessionOptions(opts));
    } catch (e) {
      throw new LenpredError(`onnxruntime could not load the model: ${(e as Error).message}`, typeof model === "string" ? { file: model } : {});
    }
    return new Session(s, s.inputNames, s.outputNames);
  }

  /**
   * Run. `fetches` may name a subset of outputs, or map names to preallocated tensors that ORT writes into
   * (no fresh output buffers: the way to reuse memory across steps).
   */
  async run(feeds: Feeds, fetches?: readonly string[] | Record<string, ort.Tensor | null>): Promise<Record<string, ort.Tensor>> {
    const missing = this.inputNames.filter((n) => !(n in feeds));
    if (missing.length) throw new LenpredError(`missing model input(s): ${missing.slice(0, 8).join(", ")}${missing.length > 8 ? ` and ${missing.length - 8} more` : ""}`);
    const out = fetches === undefined ? await this.inner.run(feeds) : await this.inner.run(feeds, fetches as ort.InferenceSession.FetchesType);
    return out as Record<string, ort.Tensor>;
  }

  /** Stop profiling and write the trace (when created with `profilePrefix`). */
  endProfiling(): void {
    this.inner.endProfiling();
  }

  async dispose(): Promise<void> {
    await this.inner.release();
  }
}

// ---------------------------------------------------------------- host <-> ort tensors

const ORT_TYPE: Partial<Record<DType, ort.Tensor.Type>> = {
  float32: "float32", float64: "float64", int64: "int64", int32: "int32", bool: "bool", uint8: "uint8", int8: "int8",
};

/** Wrap host data as an ort.Tensor without copying. */
export function toOrt(d: ConstData): ort.Tensor {
  const t = ORT_TYPE[d.dtype];
  if (!t) throw new LenpredError(`no ort tensor type for ${d.dtype}`);
  return new ort.Tensor(t, d.data as never, [...d.shape]);
}

/** A float32 ort.Tensor (wraps `data`, no copy). */
export function f32(data: Float32Array | readonly number[], dims: readonly number[]): ort.Tensor {
  return new ort.Tensor("float32", data instanceof Float32Array ? data : Float32Array.from(data), [...dims]);
}

export function f64(data: Float64Array | readonly number[], dims: readonly number[]): ort.Tensor {
  return new ort.Tensor("float64", data instanceof Float64Array ? data : Float64Array.from(data), [...dims]);
}

export function i64(data: BigInt64Array | readonly number[], dims: readonly number[]): ort.Tensor {
  return new ort.Tensor("int64", data instanceof BigInt64Array ? data : BigInt64Array.from(data.map((v) => BigInt(v))), [...dims]);
}

/** The host array behind a CPU ort.Tensor. */
export function hostData(t: ort.Tensor): TypedData {
  return t.data as TypedData;
}

/** Scalar value of a one-element float tensor. */
export function scalarOf(t: ort.Tensor): number {
  return Number((t.data as Float32Array)[0]);
}
