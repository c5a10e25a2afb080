/**
 * A model directory served from a worker thread. Tokenizing a batch of long prompts (and the n-gram and
 * linear baselines' whole prediction) is synchronous JavaScript: on the main thread it would stall every
 * other request, /healthz and /metrics included, for as long as a batch takes. In the worker it cannot:
 * the main thread only parses HTTP, validates, and posts prompts here.
 *
 * `WorkerPredictor` is a `BasePredictor` (the seam the server builds on: prompts + quantile →
 * Prediction[]), like an in-process `LengthPredictor`. The worker runs `LengthPredictor.load(dir)` — the
 * one quantile semantics — and answers one `predictBatch` per message; the batcher already runs one batch at
 * a time, so one worker is enough (ONNX Runtime's intra-op threads use the cores). Errors cross the
 * thread boundary as data: a `LenpredError` stays a `LenpredError` (a quantile the model refuses is the
 * client's 400), anything else becomes a plain Error (a 500). If the worker dies, pending and later calls
 * fail with an error (503s) instead of hanging, and `onDeath` tells the server (/readyz turns "failed", and
 * `lenpred serve` drains and exits 1 for its supervisor to restart it).
 */
import { Worker } from "node:worker_threads";
import type { BucketScheme } from "../data/buckets.js";
import type { LengthPredictorOptions, PredictOptions } from "../predictor/length-predictor.js";
import type { Prediction, Predictor } from "../model/prediction.js";
import { LenpredError, type ErrorPlace } from "../util/errors.js";
import type { FastMember, FastReadout } from "../online/fast-member.js";

/** What the server serves: a predictor of prompts (at an optional quantile), wherever it runs. */
export interface BasePredictor {
  readonly name: string;
  readonly buckets: BucketScheme;
  /** Model kind and tokenizer from lenpred.json, when known (for /metrics' lenpred_model_info). */
  readonly info?: { kind: string; tokenizer: string };
  predictBatch(prompts: string[], opts?: PredictOptions): Promise<Prediction[]>;
  dispose?(): Promise<void>;
}

export interface WorkerInit {
  modelDir: string;
  load: LengthPredictorOptions;
  /**
   * Attach the n-gram member's features to each prediction (`features`), for an `OnlineLearner` on the main
   * thread that learns a per-target readout (src/online/fast-member.ts) without the n-gram in its thread.
   */
  features?: boolean;
}

/**
 * A batch to predict (`member`: 0 = the base's DistilBERT member alone, n > 0 = a member loaded with `load`;
 * absent = the whole base), a member directory to load (answered with its handle), or a handle to unload
 * (disposed once its in-flight batches are done).
 */
export type WorkerRequest =
  | { id: number; prompts: string[]; quantile?: number; member?: number }
  | { id: number; load: string }
  | { id: number; unload: number };

export interface SerializedError {
  message: string;
  lenpred: boolean;
  place?: ErrorPlace;
}

export type WorkerMessage =
  | { type: "ready"; name: string; buckets: BucketScheme; kind: string; tokenizer: string; fast?: { readout: FastReadout; weight: number }; slow?: { weight: number } }
  | { type: "load-failed"; error: SerializedError }
  | { type: "result"; id: number; predictions: Prediction[] }
  | { type: "loaded"; id: number; handle: number }
  | { type: "error"; id: number; error: SerializedError };

export function serializeError(e: unknown): SerializedError {
  if (e instanceof LenpredError) return { message: e.message, lenpred: true, place: e.place };
  return { message: e instanceof Error ? e.message : String(e), lenpred: false };
}

export function deserializeError(s: SerializedError): Error {
  if (!s.lenpred) return new Error(s.message);
  const e = new LenpredError("", s.place ?? {});
  e.message = s.message; // already carries the place prefix
  return e;
}

/**
 * The worker: dist/serve/predictor-worker.js once built; from source (tsx, vitest) the .ts module, imported
 * after registering tsx's loader in the worker (Node 20 does not pass `--import tsx` hooks on to workers).
 */
function createWorker(init: WorkerInit): Worker {
  if (!import.meta.url.endsWith(".ts")) return new Worker(new URL("./predictor-worker.js", import.meta.url), { workerData: init });
  const entry = new URL("./predictor-worker.ts", import.meta.url).href;
  const boot = `import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true, workerData: init });
}

export class WorkerPredictor implements BasePredictor {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (p: Prediction[]) => void; reject: (e: Error) => void }>();
  private dead: Error | undefined;
  /** Called once if the worker dies while in service (not after `dispose`). */
  onDeath: ((error: Error) => void) | undefined;
  /** The n-gram member's readout, when started with `features` and the model has one (for OnlineLearner). */
  fast: FastMember | undefined;
  /**
   * The base's DistilBERT member run alone in the worker, with its weight in the ensemble, when started with
   * `features` and the model has one: what an OnlineLearner compares a retrained member against.
   */
  slow: { predictor: Predictor; weight: number } | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly name: string,
    readonly buckets: BucketScheme,
    readonly info: { kind: string; tokenizer: string },
  ) {
    worker.on("message", (m: WorkerMessage) => {
      if (m.type !== "result" && m.type !== "error" && m.type !== "loaded") return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.type === "result") p.resolve(m.predictions);
      else if (m.type === "loaded") p.resolve(m.handle as unknown as Prediction[]);
      else p.reject(deserializeError(m.error));
    });
    const die = (e: Error) => {
      if (!this.dead) {
        this.dead = e;
        this.onDeath?.(e);
      }
      for (const p of this.pending.values()) p.reject(this.dead);
      this.pending.clear();
    };
    worker.on("error", (e) => die(new Error(`predictor worker crashed: ${e.message}`)));
    worker.on("exit", (code) => die(new Error(`predictor worker exited (code ${code})`)));
  }

  /** Start a worker that loads `modelDir`; resolves once it is loaded, rejects with the load error (a LenpredError for a bad directory). */
  static start(modelDir: string, load: LengthPredictorOptions = {}, o: { features?: boolean } = {}): Promise<WorkerPredictor> {
    const worker = createWorker({ modelDir, load, features: o.features });
    return new Promise<WorkerPredictor>((resolve, reject) => {
      const onMessage = (m: WorkerMessage) => {
        if (m.type === "ready") {
          cleanup();
          const wp = new WorkerPredictor(worker, m.name, m.buckets, { kind: m.kind, tokenizer: m.tokenizer });
          wp.fast = m.fast;
          if (m.slow) wp.slow = { predictor: wp.memberView(0, "distilbert"), weight: m.slow.weight };
          resolve(wp);
        } else if (m.type === "load-failed") {
          cleanup();
          void worker.terminate();
          reject(deserializeError(m.error));
        }
      };
      const onError = (e: Error) => {
        cleanup();
        reject(new Error(`predictor worker failed to start: ${e.message}`));
      };
      const onExit = (code: number) => {
        cleanup();
        reject(new Error(`predictor worker exited (code ${code}) before the model was loaded`));
      };
      const cleanup = () => {
        worker.off("message", onMessage);
        worker.off("error", onError);
        worker.off("exit", onExit);
      };
      worker.on("message", onMessage);
      worker.on("error", onError);
      worker.on("exit", onExit);
    });
  }

  predictBatch(prompts: string[], opts: PredictOptions = {}): Promise<Prediction[]> {
    return this.request((id) => ({ id, prompts, quantile: opts.quantile }));
  }

  private request<T = Prediction[]>(make: (id: number) => WorkerRequest): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (p: Prediction[]) => void, reject });
      this.worker.postMessage(make(id));
    });
  }

  /** A Predictor view of one member in the worker (0: the base's DistilBERT member; n: a loaded one). */
  private memberView(handle: number, name: string): Predictor & { dispose(): Promise<void> } {
    const predictBatch = (prompts: string[]) => this.request((id) => ({ id, prompts, member: handle }));
    return {
      name,
      buckets: this.buckets,
      predictBatch,
      predict: async (prompt: string) => (await predictBatch([prompt]))[0]!,
      // Unloading waits in the worker for the member's in-flight batches; a dead worker has nothing to free.
      dispose: async () => { if (handle > 0 && !this.dead) await this.request((id) => ({ id, unload: handle })).catch(() => undefined); },
    };
  }

  /**
   * Load a (retrained) DistilBERT member directory in the worker, next to the base; predictions through the
   * returned view run there, and `dispose` frees it once its in-flight batches are done. Rejects with the
   * load error (a LenpredError for a bad directory).
   */
  async loadMember(dir: string): Promise<Predictor & { dispose(): Promise<void> }> {
    const handle = await this.request<number>((id) => ({ id, load: dir }));
    return this.memberView(handle, "distilbert");
  }

  /** False once the worker has died or been stopped. */
  get alive(): boolean {
    return this.dead === undefined;
  }

  /** Stop the worker (after the server has drained). */
  async dispose(): Promise<void> {
    this.dead ??= new Error("predictor worker was stopped");
    await this.worker.terminate();
  }
}
