/**
 * The training step: forward + loss + backward (autodiff.ts) + AdamW, with parameters and optimizer state
 * kept in engine-owned Float32Arrays that are fed to onnxruntime without copying.
 *
 * Two layouts, same maths (PyTorch's AdamW: decoupled decay, bias correction, optional global-norm clipping):
 * - "split": the ONNX graph returns loss, the global grad norm and the gradients (written into preallocated
 *   buffers reused every step); AdamW then updates params and moments in place in one pass per parameter
 *   (a WebAssembly SIMD kernel over the same memory ORT reads, adamw-kernel.ts; a JS loop as fallback).
 * - "fused": the ONNX graph also takes the moments and step scalars and returns updated params and moments
 *   (in-graph AdamW); outputs are written into a second buffer set and the two sets swap every step.
 * bench/engine-step.ts measures both; "split" is the default because it touches memory far fewer times
 * (ORT runs each elementwise op of the update as a separate pass over all parameters).
 */
import { LenpredError } from "../util/errors.js";
import type { FloatTensor, NamedTensors } from "./tensors.js";
import { AdamWArena } from "./adamw-kernel.js";
import { grad, type GradOptions } from "./autodiff.js";
import type { Graph, Tensor } from "./graph.js";
import * as op from "./ops.js";
import { type Feeds, type OrtTensor, ort, Session, type SessionOptions } from "./session.js";

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay (default 0.01). */
  weightDecay?: number;
  /** Clip the global gradient L2 norm to this (0/undefined = off), as torch.nn.utils.clip_grad_norm_. */
  maxGradNorm?: number;
  /** Which params decay (default: all but biases and LayerNorm weights, as the HF Trainer). */
  decays?: (name: string) => boolean;
}

export const defaultDecays = (name: string): boolean => !(name.endsWith("bias") || /layer_?norm/i.test(name));

/** The per-step scalars of AdamW at (1-based) step t. */
export function adamwScalars(t: number, lr: number, o: Required<Omit<AdamWOptions, "maxGradNorm" | "decays">>) {
  const bc1 = 1 - o.beta1 ** t;
  const sqrtBc2 = Math.sqrt(1 - o.beta2 ** t);
  // p ← p·(1 − lr·wd) − (lr/bc1)·m / (√v/√bc2 + eps)  ≡  p·decay − stepSize·m / (√v + epsHat)
  return { decay: 1 - lr * o.weightDecay, stepSize: (lr / bc1) * sqrtBc2, epsHat: o.eps * sqrtBc2 };
}

/** torch clip_grad_norm_ coefficient. */
export function clipCoefficient(norm: number, maxNorm: number | undefined): number {
  if (!maxNorm) return 1;
  return Math.min(1, maxNorm / (norm + 1e-6));
}

/** One AdamW update in place (the "split" layout's optimizer). */
export function adamwUpdate(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, s: { decay: number; stepSize: number; epsHat: number; clip: number; beta1: number; beta2: number }): void {
  const b1 = s.beta1;
  const b2 = s.beta2;
  const c1 = (1 - b1) * s.clip;
  const c2 = (1 - b2) * s.clip * s.clip;
  const { decay, stepSize, epsHat } = s;
  const n = p.length;
  for (let i = 0; i < n; i++) {
    const gi = g[i]!;
    const mi = b1 * m[i]! + c1 * gi;
    const vi = b2 * v[i]! + c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) + epsHat);
  }
}

export interface TrainerSpec {
  graph: Graph;
  /** Scalar float32 loss (mean over the batch). */
  loss: Tensor;
  /** Trainable parameters: float32 graph inputs named as in `initial`. */
  params: readonly Tensor[];
  /** Initial values by param name (copied into engine-owned buffers). */
  initial: NamedTensors;
  adamw?: AdamWOptions;
  mode?: "split" | "fused";
  session?: SessionOptions;
  /** More outputs to fetch every step (e.g. logits for training metrics). */
  extraOutputs?: Record<string, Tensor>;
  /** "split" only: update with the plain JS loop instead of the WebAssembly SIMD kernel (for comparison). */
  jsUpdate?: boolean;
  /** Options of the gradient graph (benchmarking only: `embeddingGrad`). */
  grad?: GradOptions;
}

export interface StepResult {
  /** Loss of the batch, before the update. */
  loss: number;
  /** Global L2 norm of the gradients before clipping. */
  gradNorm: number;
  /** Learning rate used. */
  lr: number;
  /** The requested extra outputs. */
  outputs: Record<string, OrtTensor>;
  /** Wall seconds in the ORT run and in the JS AdamW update ("split" only, else 0). */
  seconds: { run: number; update: number };
}

interface Slot {
  name: string;
  shape: number[];
  p: Float32Array;
  m: Float32Array;
  v: Float32Array;
  /** split: gradient buffer; fused: the second param/moment set. */
  g?: Float32Array;
  p2?: Float32Array;
  m2?: Float32Array;
  v2?: Float32Array;
  decays: boolean;
}

const S_DECAY = "adamw.decay";
const S_STEP = "adamw.step_size";
const S_EPS = "adamw.eps_hat";
const S_MAXNORM = "adamw.max_norm";

/** Per-step overrides of the AdamW options given at creation. */
export interface StepOptions {
  weightDecay?: number;
  maxGradNorm?: number;
}

export class Trainer {
  private t = 0;
  private constructor(
    /** The ORT session running the step graph (e.g. for `endProfiling`). */
    readonly session: Session,
    private readonly slots: Slot[],
    private readonly mode: "split" | "fused",
    private readonly opts: Required<Omit<AdamWOptions, "decays">>,
    private readonly extra: string[],
    private readonly arena: AdamWArena | undefined,
  ) {}

  static async create(spec: TrainerSpec): Promise<Trainer> {
    const { graph: g, loss, params } = spec;
    const mode = spec.mode ?? "split";
    if (mode !== "split" && mode !== "fused") throw new LenpredError(`Trainer: mode must be "split" or "fused", got ${JSON.stringify(mode)}`);
    const a = spec.adamw ?? {};
    const opts = { beta1: a.beta1 ?? 0.9, beta2: a.beta2 ?? 0.999, eps: a.eps ?? 1e-8, weightDecay: a.weightDecay ?? 0.01, maxGradNorm: a.maxGradNorm ?? 0 };
    const decays = a.decays ?? defaultDecays;
    if (loss.rank !== 0 || loss.dtype !== "float32") throw new LenpredError(`Trainer: loss must be a float32 scalar, got ${loss}`);

    // split: p, g, m, v live in one wasm memory so the SIMD kernel updates them where ORT reads/writes them.
    const arena = mode === "split" && !spec.jsUpdate ? AdamWArena.create(params.map((p) => spec.initial.get(p.name)?.data.length ?? 0)) : undefined;
    const slots: Slot[] = params.map((p, i) => {
      if (p.producer || !g.inputs.includes(p)) throw new LenpredError(`Trainer: param ${p.name} must be a graph input`);
      const init = spec.initial.get(p.name);
      if (!init) throw new LenpredError(`Trainer: no initial value for param`, { field: p.name });
      if (init.shape.length !== p.rank || init.shape.some((d, i) => d !== p.shape[i])) {
        throw new LenpredError(`Trainer: initial value has shape [${init.shape.join(", ")}], graph expects [${p.shape.join(", ")}]`, { field: p.name });
      }
      const n = init.data.length;
      const a = arena?.slots[i];
      const slot: Slot = a
        ? { name: p.name, shape: [...init.shape], p: a.p, m: a.m, v: a.v, g: a.g, decays: decays(p.name) }
        : { name: p.name, shape: [...init.shape], p: new Float32Array(n), m: new Float32Array(n), v: new Float32Array(n), decays: decays(p.name) };
      slot.p.set(init.data);
      if (mode === "split") slot.g ??= new Float32Array(n);
      else {
        slot.p2 = new Float32Array(n);
        slot.m2 = new Float32Array(n);
        slot.v2 = new Float32Array(n);
      }
      return slot;
    });

    const grads = grad(loss, params, spec.grad);
    let sumsq: Tensor | undefined;
    for (const gr of grads) {
      const s = g.node("ReduceSumSquare", [gr], [{ dtype: "float32", shape: [] }], { keepdims: { kind: "int", v: 0 } })[0]!;
      sumsq = sumsq ? op.add(sumsq, s) : s;
    }
    const gradNorm = op.sqrt(sumsq!);
    const outputs: Record<string, Tensor> = { loss, grad_norm: gradNorm, ...(spec.extraOutputs ?? {}) };
    const inputs = [...g.inputs];

    if (mode === "split") {
      params.forEach((p, i) => (outputs[`grad.${p.name}`] = grads[i]!));
    } else {
      const decay = g.input(S_DECAY, "float32", []);
      const stepSize = g.input(S_STEP, "float32", []);
      const epsHat = g.input(S_EPS, "float32", []);
      inputs.push(decay, stepSize, epsHat);
      const maxNorm = g.input(S_MAXNORM, "float32", []); // +Infinity turns clipping off
      inputs.push(maxNorm);
      const clip = op.min(op.div(maxNorm, op.add(gradNorm, 1e-6)), 1);
      const c1 = op.mul(clip, 1 - opts.beta1);
      const c2 = op.mul(op.mul(clip, clip), 1 - opts.beta2);
      params.forEach((p, i) => {
        const gr = grads[i]!;
        const m = g.input(`adamw.m.${p.name}`, "float32", p.shape);
        const v = g.input(`adamw.v.${p.name}`, "float32", p.shape);
        inputs.push(m, v);
        const m2 = op.add(op.mul(m, opts.beta1), op.mul(gr, c1));
        const v2 = op.add(op.mul(v, opts.beta2), op.mul(op.mul(gr, gr), c2));
        const upd = op.mul(op.div(m2, op.add(op.sqrt(v2), epsHat)), stepSize);
        const p2 = op.sub(slots[i]!.decays ? op.mul(p, decay) : p, upd);
        outputs[`new.${p.name}`] = p2;
        outputs[`new.m.${p.name}`] = m2;
        outputs[`new.v.${p.name}`] = v2;
      });
    }
    const session = await Session.create(g.toOnnx({ outputs, inputs }), spec.session);
    return new Trainer(session, slots, mode, opts, Object.keys(spec.extraOutputs ?? {}), arena);
  }

  /** Optimizer steps taken so far. */
  get stepCount(): number {
    return this.t;
  }

  /** Current parameter values as ort tensors (no copy), to feed another session (e.g. evaluation). */
  parameterFeeds(): Feeds {
    return Object.fromEntries(this.slots.map((s) => [s.name, new ort.Tensor("float32", s.p, s.shape)]));
  }

  /**
   * One training step on a batch: `feeds` holds the graph's non-parameter inputs; `lr` comes from the
   * schedule (e.g. `linearWarmupDecay(...)(trainer.stepCount)`); `o` overrides weight decay / clipping.
   */
  async step(feeds: Feeds, lr: number, o: StepOptions = {}): Promise<StepResult> {
    const t = this.t + 1;
    const opts = { ...this.opts, weightDecay: o.weightDecay ?? this.opts.weightDecay, maxGradNorm: o.maxGradNorm ?? this.opts.maxGradNorm };
    const sc = adamwScalars(t, lr, opts);
    const all: Feeds = { ...feeds };
    const fetches: Record<string, OrtTensor | null> = { loss: null, grad_norm: null };
    for (const e of this.extra) fetches[e] = null;
    for (const s of this.slots) {
      all[s.name] = new ort.Tensor("float32", s.p, s.shape);
      if (this.mode === "split") fetches[`grad.${s.name}`] = new ort.Tensor("float32", s.g!, s.shape);
      else {
        all[`adamw.m.${s.name}`] = new ort.Tensor("float32", s.m, s.shape);
        all[`adamw.v.${s.name}`] = new ort.Tensor("float32", s.v, s.shape);
        fetches[`new.${s.name}`] = new ort.Tensor("float32", s.p2!, s.shape);
        fetches[`new.m.${s.name}`] = new ort.Tensor("float32", s.m2!, s.shape);
        fetches[`new.v.${s.name}`] = new ort.Tensor("float32", s.v2!, s.shape);
      }
    }
    if (this.mode === "fused") {
      all[S_DECAY] = new ort.Tensor("float32", Float32Array.of(sc.decay), []);
      all[S_STEP] = new ort.Tensor("float32", Float32Array.of(sc.stepSize), []);
      all[S_EPS] = new ort.Tensor("float32", Float32Array.of(sc.epsHat), []);
      all[S_MAXNORM] = new ort.Tensor("float32", Float32Array.of(opts.maxGradNorm > 0 ? opts.maxGradNorm : Infinity), []);
    }
    const t0 = performance.now();
    const out = await this.session.run(all, fetches);
    const t1 = performance.now();
    const loss = Number((out.loss!.data as Float32Array)[0]);
    const gradNorm = Number((out.grad_norm!.data as Float32Array)[0]);
    if (this.mode === "split") {
      const clip = clipCoefficient(gradNorm, opts.maxGradNorm);
      this.slots.forEach((s, i) => {
        const args = { ...sc, decay: s.decays ? sc.decay : 1, clip, beta1: this.opts.beta1, beta2: this.opts.beta2 };
        if (this.arena) this.arena.update(i, args);
        else adamwUpdate(s.p, s.g!, s.m, s.v, args);
      });
    } else {
      for (const s of this.slots) {
        [s.p, s.p2] = [s.p2!, s.p];
        [s.m, s.m2] = [s.m2!, s.m];
        [s.v, s.v2] = [s.v2!, s.v];
      }
    }
    const t2 = performance.now();
    this.t = t;
    const outputs: Record<string, OrtTensor> = {};
    for (const e of this.extra) outputs[e] = out[e]!;
    return { loss, gradNorm, lr, outputs, seconds: { run: (t1 - t0) / 1000, update: (t2 - t1) / 1000 } };
  }

  /** Parameters by name: live views of the engine's buffers (copy them to keep a snapshot). */
  parameters(): NamedTensors {
    return new Map(this.slots.map((s) => [s.name, { shape: [...s.shape], data: s.p } satisfies FloatTensor]));
  }

  /** Everything to resume exactly: step count, and `<name>.exp_avg` / `<name>.exp_avg_sq` moments (views). */
  optimizerState(): { step: number; tensors: NamedTensors } {
    const tensors: NamedTensors = new Map();
    for (const s of this.slots) {
      tensors.set(`${s.name}.exp_avg`, { shape: [...s.shape], data: s.m });
      tensors.set(`${s.name}.exp_avg_sq`, { shape: [...s.shape], data: s.v });
    }
    return { step: this.t, tensors };
  }

  /** Restore moments and step count (from `optimizerState`); parameters via `loadParameters`. */
  loadOptimizerState(state: { step: number; tensors: NamedTensors }): void {
    for (const s of this.slots) {
      for (const [key, dst] of [[`${s.name}.exp_avg`, s.m], [`${s.name}.exp_avg_sq`, s.v]] as const) {
        const src = state.tensors.get(key);
        if (!src || src.data.length !== dst.length) throw new LenpredError(`optimizer state is missing or has the wrong size`, { field: key });
        dst.set(src.data);
      }
    }
    this.t = state.step;
  }

  /** Overwrite parameter values (e.g. from a checkpoint). */
  loadParameters(named: NamedTensors): void {
    for (const s of this.slots) {
      const src = named.get(s.name);
      if (!src || src.data.length !== s.p.length) throw new LenpredError(`parameter is missing or has the wrong size`, { field: s.name });
      s.p.set(src.data);
    }
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}
