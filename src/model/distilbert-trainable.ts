/**
 * `DistilBertModel`: HF `DistilBertForSequenceClassification` on the engine, as a `TrainableModel`.
 * Two ONNX sessions share the engine-owned parameter buffers (fed as graph inputs, never copied):
 * - the training step (engine `Trainer`): forward with dropout + head loss + backward + AdamW;
 * - inference: the same forward with dropout off, returning the head outputs [batch, num_labels].
 * Heads (heads.ts): classification = softmax cross-entropy on bucket indices; regression = MSE on
 * `targets` (log1p tokens); quantile = pinball loss on `targets` at `config.quantiles`.
 */
import { Graph, type Tensor } from "../engine/graph.js";
import * as op from "../engine/ops.js";
import { Trainer, type AdamWOptions } from "../engine/optim.js";
import { stepSeed } from "../engine/random.js";
import { i64, ort, Session, type Feeds, type SessionOptions } from "../engine/session.js";
import type { LabeledBatch, TokenBatch, TrainableModel, TrainStepOptions } from "./trainable.js";
import { LenpredError } from "../util/errors.js";
import type { DistilBertConfig } from "./config.js";
import { buildForward } from "./distilbert-forward.js";
import { validateHead } from "./heads.js";
import { initParams, paramSpecs, validateParams } from "./params.js";
import type { NamedTensors } from "../engine/tensors.js";

export interface DistilBertModelOptions {
  /** Initial parameters (HF names); random HF-style init from `seed` when omitted. */
  params?: NamedTensors;
  /** Seed for the random init and the dropout masks (default 0; masks are hashed from seed and step). */
  seed?: number;
  /** AdamW betas/eps (weight decay and clipping come with each `trainStep`). */
  adamw?: Omit<AdamWOptions, "weightDecay" | "maxGradNorm">;
  /** "split" (default) or "fused" AdamW, see src/engine/optim.ts. */
  optimizerMode?: "split" | "fused";
  session?: SessionOptions;
}

interface Built {
  graph: Graph;
  params: Tensor[];
  loss?: Tensor;
  logits: Tensor;
}

/** Training-graph input carrying the per-step dropout seed (int64 scalar, `stepSeed(seed, step)`). */
export const DROPOUT_SEED_INPUT = "dropout_seed";

/**
 * The training graph (dropout on, loss) or the inference graph (dropout off), parameters as inputs. The
 * training graph takes the int64 scalar input `dropout_seed`: its dropout masks are a pure function of it
 * (engine/random.ts), which is what makes a resumed run bit-exact.
 */
export function buildGraph(c: DistilBertConfig, training: boolean): Built {
  const g = new Graph(training ? "distilbert_train" : "distilbert_infer");
  const ids = g.input("input_ids", "int64", ["batch", "seq"]);
  const mask = g.input("attention_mask", "int64", ["batch", "seq"]);
  const params = paramSpecs(c).map((s) => g.input(s.name, "float32", s.shape));
  const byName = new Map(params.map((p) => [p.name, p]));
  const dropoutKey = training ? g.input(DROPOUT_SEED_INPUT, "int64", []) : undefined;
  const { logits } = buildForward(g, c, (n) => byName.get(n)!, ids, mask, { training, dropoutKey });
  if (!training) return { graph: g, params, logits };
  let loss: Tensor;
  if (c.head === "classification") {
    loss = op.softmaxCrossEntropy(logits, g.input("labels", "int64", ["batch"]));
  } else {
    const target = g.input("targets", "float32", ["batch", 1]);
    loss = c.head === "regression" ? op.mseLoss(logits, target) : op.pinballLoss(logits, target, c.quantiles!);
  }
  return { graph: g, params, loss, logits };
}

export class DistilBertModel implements TrainableModel {
  private trainer?: Trainer;
  /** Parameters before the first train step (after it, the trainer owns them). */
  private initial: NamedTensors;
  private pendingOptimizerState?: { step: number; tensors: NamedTensors };
  private inferSession?: Session;
  readonly numOutputs: number;

  private constructor(readonly config: DistilBertConfig, params: NamedTensors, private readonly opts: DistilBertModelOptions) {
    this.initial = params;
    this.numOutputs = config.num_labels;
  }

  static async create(config: DistilBertConfig, opts: DistilBertModelOptions = {}): Promise<DistilBertModel> {
    validateHead(config);
    const params = opts.params ?? initParams(config, opts.seed ?? 0);
    validateParams(config, params);
    // No copy here: the engine trainer copies into its own buffers, and nothing writes `initial` in place
    // (loadOptimizerState replaces its entries), so the caller's tensors stay untouched.
    const own: NamedTensors = new Map(paramSpecs(config).map((s) => [s.name, params.get(s.name)!]));
    return new DistilBertModel(config, own, opts);
  }

  private async ensureTrainer(): Promise<Trainer> {
    if (this.trainer) return this.trainer;
    const b = buildGraph(this.config, true);
    this.trainer = await Trainer.create({
      graph: b.graph, loss: b.loss!, params: b.params, initial: this.initial,
      adamw: { ...this.opts.adamw },
      mode: this.opts.optimizerMode ?? "split",
      session: this.opts.session,
    });
    if (this.pendingOptimizerState) this.applyState(this.trainer, this.pendingOptimizerState);
    this.pendingOptimizerState = undefined;
    this.initial = new Map(); // the trainer owns the parameters now; let the initial copy be collected
    return this.trainer;
  }

  async trainStep(batch: LabeledBatch, o: TrainStepOptions): Promise<number> {
    const trainer = await this.ensureTrainer();
    const feeds = tokenFeeds(batch, this.config);
    if (this.config.head === "classification") {
      if (!batch.labels || batch.labels.length !== batch.batch) throw new LenpredError(`classification batch needs ${batch.batch} labels`, { field: "labels" });
      for (const l of batch.labels) {
        if (!(l >= 0 && l < this.numOutputs)) throw new LenpredError(`label ${l} out of range 0..${this.numOutputs - 1}`, { field: "labels" });
      }
      feeds.labels = i64(BigInt64Array.from(batch.labels, (v) => BigInt(v)), [batch.batch]);
    } else {
      if (!batch.targets || batch.targets.length !== batch.batch) throw new LenpredError(`${this.config.head} batch needs ${batch.batch} targets`, { field: "targets" });
      feeds.targets = new ort.Tensor("float32", Float32Array.from(batch.targets), [batch.batch, 1]);
    }
    // Dropout masks follow (seed, optimizer step): the step counter is part of the optimizer state, so a
    // resumed run feeds the same seeds as the uninterrupted one and draws the same masks.
    feeds[DROPOUT_SEED_INPUT] = i64([stepSeed(this.opts.seed ?? 0, trainer.stepCount)], []);
    // Weight decay and clipping are per-step options of the engine trainer (0 / undefined = no clipping).
    const r = await trainer.step(feeds, o.learningRate, { weightDecay: o.weightDecay, maxGradNorm: o.maxGradNorm ?? 0 });
    return r.loss;
  }

  async forward(batch: TokenBatch): Promise<Float32Array> {
    if (!this.inferSession) {
      const b = buildGraph(this.config, false);
      this.inferSession = await Session.create(b.graph.toOnnx({ outputs: { logits: b.logits } }), this.opts.session);
    }
    const feeds: Feeds = { ...tokenFeeds(batch, this.config), ...this.paramFeeds() };
    const out = await this.inferSession.run(feeds, ["logits"]);
    return Float32Array.from(out.logits!.data as Float32Array);
  }

  private paramFeeds(): Feeds {
    if (this.trainer) return this.trainer.parameterFeeds();
    return Object.fromEntries([...this.initial].map(([k, t]) => [k, new ort.Tensor("float32", t.data, t.shape)]));
  }

  /** Current parameters under HF names (live views: copy to snapshot). */
  parameters(): NamedTensors {
    return this.trainer ? this.trainer.parameters() : this.initial;
  }

  /** Parameters, AdamW moments (`<name>.exp_avg`, `<name>.exp_avg_sq`) and the step counter (live views). */
  optimizerState(): { step: number; tensors: NamedTensors } {
    if (!this.trainer) {
      if (this.pendingOptimizerState) return this.pendingOptimizerState;
      const tensors: NamedTensors = new Map(this.initial);
      for (const [k, t] of this.initial) {
        tensors.set(`${k}.exp_avg`, { shape: t.shape, data: new Float32Array(t.data.length) });
        tensors.set(`${k}.exp_avg_sq`, { shape: t.shape, data: new Float32Array(t.data.length) });
      }
      return { step: 0, tensors };
    }
    const s = this.trainer.optimizerState();
    const tensors: NamedTensors = new Map(this.trainer.parameters());
    for (const [k, t] of s.tensors) tensors.set(k, t);
    return { step: s.step, tensors };
  }

  loadOptimizerState(state: { step: number; tensors: NamedTensors }): void {
    for (const s of paramSpecs(this.config)) {
      for (const key of [s.name, `${s.name}.exp_avg`, `${s.name}.exp_avg_sq`]) {
        const t = state.tensors.get(key);
        if (!t || t.data.length !== s.shape.reduce((a, b) => a * b, 1)) throw new LenpredError("optimizer state is missing or has the wrong size", { field: key });
      }
    }
    if (this.trainer) this.applyState(this.trainer, state);
    else {
      this.pendingOptimizerState = copyState(state);
      for (const k of [...this.initial.keys()]) this.initial.set(k, this.pendingOptimizerState.tensors.get(k)!);
    }
  }

  private applyState(trainer: Trainer, state: { step: number; tensors: NamedTensors }): void {
    trainer.loadParameters(state.tensors);
    trainer.loadOptimizerState(state);
  }

  async dispose(): Promise<void> {
    await this.trainer?.dispose();
    await this.inferSession?.dispose();
    this.trainer = undefined;
    this.inferSession = undefined;
  }
}

function tokenFeeds(b: TokenBatch, c: DistilBertConfig): Feeds {
  const n = b.batch * b.seqLen;
  if (b.inputIds.length !== n || b.attentionMask.length !== n) {
    throw new LenpredError(`batch of ${b.batch} × ${b.seqLen} needs ${n} ids and mask values, got ${b.inputIds.length} and ${b.attentionMask.length}`);
  }
  if (b.seqLen > c.max_position_embeddings) throw new LenpredError(`sequence length ${b.seqLen} exceeds max_position_embeddings ${c.max_position_embeddings}`, { field: "input_ids" });
  const vocab = BigInt(c.vocab_size);
  for (let i = 0; i < n; i++) {
    const id = b.inputIds[i]!;
    if (id < 0n || id >= vocab) throw new LenpredError(`token id ${id} at position ${i} is outside the vocabulary (size ${c.vocab_size})`, { field: "input_ids" });
  }
  return { input_ids: i64(b.inputIds, [b.batch, b.seqLen]), attention_mask: i64(b.attentionMask, [b.batch, b.seqLen]) };
}

function copyTensors(t: NamedTensors): NamedTensors {
  return new Map([...t].map(([k, v]) => [k, { shape: [...v.shape], data: Float32Array.from(v.data) }]));
}

function copyState(s: { step: number; tensors: NamedTensors }): { step: number; tensors: NamedTensors } {
  return { step: s.step, tensors: copyTensors(s.tensors) };
}
