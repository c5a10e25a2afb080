/**
 * `OnlineLearner`: a base length predictor that learns the LLM it serves from that LLM's completions, per
 * target model (the `model` string of an OpenAI body). A new target starts as the base model; each
 * observation updates that target's calibrator (./calibrator.ts: scale/slope map, conformal residuals, ACI)
 * and its live-quality window (./stats.ts). Predictions never wait for learning: `predictBatch` reads the
 * current state; `observe` queues behind earlier observations so they are learned in order.
 *
 * ```ts
 * const l = await OnlineLearner.load("models/alpaca-s3", { quantile: 0.9 });
 * const [p] = await l.predictBatch(["Explain TCP slow start."], { model: "gpt-4" }); // p.reserveTokens
 * await l.observe([{ prompt: "Explain TCP slow start.", output_tokens: 412, model: "gpt-4" }]);
 * l.stats();                       // per target: MAE, coverage, τ, drift …
 * const snap = l.snapshot();       // plain JSON; OnlineLearner.load(dir, { restore: snap }) resumes
 * ```
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { bucketCount, bucketOf, upperBound, type BucketScheme } from "../data/buckets.js";
import { checkQuantile, quantileBucket } from "../model/decode.js";
import { resolveModelDir } from "../predictor/bundled.js";
import { checkPrompt, LengthPredictor, type LengthPredictorOptions } from "../predictor/length-predictor.js";
import type { Prediction, Predictor } from "../model/prediction.js";
import { LenpredError } from "../util/errors.js";
import { asObject } from "../util/fields.js";
import { readJsonFile } from "../util/json-file.js";
import { Calibrator, DEFAULT_CALIBRATOR, type CalibratorOptions, type CalibratorState } from "./calibrator.js";
import { DEFAULT_FAST, FastHead, fastFeatures, findFastMember, findMember, type FastFeatures, type FastHeadState, type FastMember, type FastOptions } from "./fast-member.js";
import { checkModelName, DEFAULT_OBSERVATION_LIMITS, validateObservations, type ObservationLimits, type ValidObservation } from "./observation.js";
import { WindowStats, type LiveStats, type StatsState } from "./stats.js";

export interface OnlinePrediction extends Prediction {
  /** Calibrated q-quantile of the output length in tokens (continuous; may exceed the last bucket edge). */
  reserveTokens: number;
  /** Target the prediction was made for. */
  model: string;
  /** Observations of that target learned so far. */
  observations: number;
}

export interface OnlineLearnerOptions {
  /** Default reservation level (0.9). */
  quantile?: number;
  /** Most target models with state; observations for a new name beyond it are refused. */
  maxModels?: number;
  calibrator?: Partial<CalibratorOptions>;
  /** Observations in the live-quality window. */
  statsWindow?: number;
  /** The base model's validation MAE (heldout.json), for the drift flag. */
  validationMae?: number;
  /** Drift when live MAE > (1 + margin) × validation MAE. */
  driftMargin?: number;
  /** Observations before the drift flag may be raised. */
  minForDrift?: number;
  /** Base predictions cached by prompt hash (predict-then-observe reuses them). */
  baseCacheSize?: number;
  limits?: ObservationLimits;
  /** Online learning of the n-gram member's readout per target (default on when the base has one); false = off. */
  fast?: Partial<FastOptions> | false;
  /**
   * The base's n-gram member when the base runs elsewhere (a worker thread: `lenpred serve`). Its predictions then
   * carry each prompt's fast-member features as `features` (see `PredictionWithFeatures`).
   */
  fastMember?: FastMember;
  /**
   * The base's DistilBERT member and its ensemble weight when the base runs elsewhere (a worker thread), so a
   * retrained per-target member (loaded there too) can replace its contribution. Default: found in `base`.
   */
  slowMember?: { predictor: Predictor; weight: number };
  /**
   * Where observations' base predictions come from (default: `base`). `lenpred serve` predicts through its
   * micro-batcher but learns straight from the worker, so a full predict queue never refuses learning.
   */
  learnBase?: Predictor;
}

/** A model directory's validation MAE (heldout.json, written by scripts/train-default-models.sh), for the drift flag. */
export async function readValidationMae(dir: string): Promise<number | undefined> {
  const held = await readJsonFile(join(dir, "heldout.json")).catch(() => null) as { metrics?: { mae?: unknown } } | null;
  return typeof held?.metrics?.mae === "number" ? held.metrics.mae : undefined;
}

/** A base prediction that carries the fast member's features (computed where the base runs). */
export type PredictionWithFeatures = Prediction & { features?: FastFeatures };

export interface TargetSnapshot { calibrator: CalibratorState; stats: StatsState; fast?: FastHeadState }
export interface LearnerSnapshot { version: 1; learnedSeq: number; targets: Record<string, TargetSnapshot> }

interface Target { calibrator: Calibrator; stats: WindowStats; fast?: FastHead; member?: Predictor }

/** A base prediction with what the fast member needs to re-read it per target. */
interface BaseEntry { pred: Prediction; ff?: FastFeatures }

/** Most observations learned with one base-model batch. */
const LEARN_BATCH = 256;

/** Pseudo-count of the base model's bucket probabilities when mixed with the learned residual distribution. */
const BASE_PRIOR = 4;

export class OnlineLearner {
  readonly quantile: number;
  readonly maxModels: number;
  readonly limits: ObservationLimits;
  private readonly calOpts: CalibratorOptions;
  private readonly statsWindow: number;
  private readonly targets = new Map<string, Target>();
  /** Target names admitted (with state, or queued to get it). */
  private readonly admitted = new Set<string>();
  private readonly cache = new Map<string, BaseEntry>();
  private readonly fast: FastMember | undefined;
  private readonly fastOpts: FastOptions;
  /** The base's DistilBERT member (a retrained per-target copy replaces its contribution). */
  private readonly slow: { predictor: Predictor; weight: number } | undefined;
  private readonly baseCacheSize: number;
  private queue: { obs: ValidObservation[]; resolve: () => void; reject: (e: Error) => void }[] = [];
  private queued = 0;
  private learning = 0;
  private draining: Promise<void> | undefined;
  /** Observations refused for the model cap (visible in metrics). */
  refused = 0;
  /** The base model directory, when loaded from one (retraining starts from its DistilBERT member). */
  modelDir: string | undefined;
  /** Highest store seq learned (observations that came through a store carry one). */
  learnedSeq = 0;

  constructor(readonly base: Predictor, private readonly opts: OnlineLearnerOptions = {}) {
    this.quantile = opts.quantile ?? 0.9;
    checkQuantile(this.quantile);
    this.maxModels = opts.maxModels ?? 64;
    if (!(Number.isInteger(this.maxModels) && this.maxModels >= 1)) throw new LenpredError(`maxModels must be a positive integer, got ${this.maxModels}`);
    this.calOpts = { ...DEFAULT_CALIBRATOR, ...opts.calibrator };
    this.statsWindow = opts.statsWindow ?? 500;
    this.baseCacheSize = opts.baseCacheSize ?? 4096;
    this.limits = opts.limits ?? DEFAULT_OBSERVATION_LIMITS;
    this.fast = opts.fast === false ? undefined : opts.fastMember ?? findFastMember(base);
    this.fastOpts = { ...DEFAULT_FAST, ...(opts.fast || {}) };
    this.slow = opts.slowMember ?? findMember(base, (p) => p.name === "distilbert");
  }

  /** Whether the base has a DistilBERT member that a retrained one can replace per target. */
  get hasSlowMember(): boolean {
    return this.slow !== undefined;
  }

  /**
   * Swap a target's DistilBERT member: a retrained predictor replaces the base member's contribution for that
   * target (undefined = back to the base's). One reference swap; returns the previous one (to dispose later).
   */
  setMember(model: string, predictor: Predictor | undefined, inputShift = 0): Predictor | undefined {
    const t = this.targets.get(model);
    if (!t || !this.slow) throw new LenpredError(`no learned target '${model}' (or the base has no DistilBERT member)`, { field: "model" });
    const old = t.member;
    t.member = predictor;
    // The window's inputs were computed with the old member: move them by the mean change it makes.
    if (inputShift) t.calibrator.shiftInputs(this.slow.weight * inputShift);
    return old;
  }

  /** A target's current DistilBERT member (its retrained one, or the base's). */
  memberOf(model: string): Predictor | undefined {
    return this.targets.get(model)?.member ?? this.slow?.predictor;
  }

  /** Per prompt, how much a target's retrained member moves the ensemble's log estimate (undefined: none). */
  private async memberDeltas(t: Target | undefined, prompts: string[]): Promise<number[] | undefined> {
    const member = t?.member;
    if (!member || !this.slow) return undefined;
    const [mine, base] = await Promise.all([member.predictBatch(prompts), this.slow.predictor.predictBatch(prompts)]);
    const l = (p: Prediction) => Math.log1p(Math.max(0, p.expectedTokens));
    return mine.map((p, i) => this.slow!.weight * (l(p) - l(base[i]!)));
  }

  /** Whether the n-gram member is learned online (the base has one with a hidden layer). */
  get learnsFastMember(): boolean {
    return this.fast !== undefined;
  }

  private newTarget(): Target {
    return { calibrator: new Calibrator(this.calOpts), stats: new WindowStats(this.statsWindow), ...(this.fast ? { fast: FastHead.from(this.fast, this.fastOpts) } : {}) };
  }

  /** The calibrator's input for a target: log1p of the base ensemble, with the n-gram member re-read by the target's head. */
  private inputOf(t: Target | undefined, e: BaseEntry, delta = 0): number {
    const x = Math.log1p(Math.max(0, e.pred.expectedTokens)) + delta;
    if (!t?.fast || !e.ff) return x;
    return x + (this.fastOpts.weight ?? this.fast!.weight) * (t.fast.predict(e.ff.h) - e.ff.base);
  }

  /** Open a model directory as the base; reads its heldout.json MAE for the drift flag when present. */
  static async load(spec: string, opts: OnlineLearnerOptions & LengthPredictorOptions & { restore?: LearnerSnapshot } = {}): Promise<OnlineLearner> {
    // A bundled model name or hub id is resolved to its directory: heldout.json and retraining read files there.
    const dir = await resolveModelDir(spec);
    const base = await LengthPredictor.load(dir, { ...opts, quantile: undefined });
    const validationMae = opts.validationMae ?? await readValidationMae(dir);
    const l = new OnlineLearner(base, { ...opts, validationMae });
    l.modelDir = dir;
    if (opts.restore) l.restore(opts.restore);
    return l;
  }

  get buckets(): BucketScheme {
    return this.base.buckets;
  }

  /** Targets with learned state. */
  models(): string[] {
    return [...this.targets.keys()];
  }

  /** Predict for a target (default: "default"); reads the current state, never waits for learning. */
  async predictBatch(prompts: string[], o: { model?: string; quantile?: number } = {}): Promise<OnlinePrediction[]> {
    prompts.forEach((p, i) => checkPrompt(p, prompts.length === 1 ? "prompt" : `prompts[${i}]`));
    const model = checkModelName(o.model);
    const q = o.quantile ?? this.quantile;
    checkQuantile(q);
    const base = await this.basePredict(prompts);
    const t = this.targets.get(model);
    const d = await this.memberDeltas(t, prompts);
    return base.map((b, i) => this.assemble(t, b, q, model, d?.[i]));
  }

  /** What the base model alone predicts and reserves at q (the static reference a replay compares with). */
  async predictStatic(prompts: string[], o: { quantile?: number } = {}): Promise<OnlinePrediction[]> {
    const q = o.quantile ?? this.quantile;
    checkQuantile(q);
    return (await this.basePredict(prompts)).map((b) => this.assemble(undefined, b, q, "static"));
  }

  /** Compute base predictions for prompts ahead of time (replay warms the cache a chunk at a time). */
  async warm(prompts: string[]): Promise<void> {
    await this.basePredict(prompts);
  }

  /** Validate an observe body (`{observations: [...]}`, an array or one observation) → LenpredError naming the field. */
  validate(body: unknown): ValidObservation[] {
    return markValid(validateObservations(body, this.limits));
  }

  /**
   * Learn from observations, in order after any earlier call. Untrusted input is validated first (nothing is
   * learned from a batch with an invalid record). Resolves when learned.
   */
  async observe(body: unknown): Promise<void> {
    const obs = this.admit(body);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ obs, resolve, reject });
      this.queued += obs.length;
      this.kick();
    });
  }

  private kick(): void {
    if (this.draining) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (this.queue.length) this.kick(); // queued between the loop's last check and here
    });
  }

  /**
   * Learn queued calls in order; calls queued while a batch is being learned are coalesced into the next one,
   * so concurrent observers share one base-model batch instead of one inference each.
   */
  private async drain(): Promise<void> {
    while (this.queue.length) {
      const calls: typeof this.queue = [];
      let n = 0;
      while (this.queue.length && (calls.length === 0 || n + this.queue[0]!.obs.length <= LEARN_BATCH)) {
        const c = this.queue.shift()!;
        calls.push(c);
        n += c.obs.length;
      }
      this.queued -= n;
      this.learning = n;
      try {
        await this.learn(calls.flatMap((c) => c.obs));
        for (const c of calls) c.resolve();
      } catch (e) {
        for (const c of calls) c.reject(e as Error);
      } finally {
        this.learning = 0;
      }
    }
  }

  /** Observations waiting to be learned. */
  get backlog(): number {
    return this.queued;
  }

  /** Observations accepted and not learned yet: the backlog and the batch being learned (what bounds memory). */
  get pending(): number {
    return this.queued + this.learning;
  }

  /** Resolves once every queued observation is learned. */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /** Validate (unless already validated) and check the target cap: what the service does before storing. */
  admit(body: unknown): ValidObservation[] {
    const obs = Array.isArray(body) && body.every(isValid) ? body as ValidObservation[] : this.validate(body);
    this.checkCap(obs);
    return obs;
  }

  /** Refuse the whole batch if it would create targets beyond the cap (a flood of names cannot push others out). */
  private checkCap(obs: ValidObservation[]): void {
    const fresh = new Set<string>();
    obs.forEach((o, i) => {
      if (this.admitted.has(o.model) || fresh.has(o.model)) return;
      fresh.add(o.model);
      if (this.admitted.size + fresh.size > this.maxModels) {
        this.refused += obs.length;
        throw new LenpredError(`too many target models: at most ${this.maxModels} are learned (this one would be new)`, { record: i, field: "model" });
      }
    });
    // Names count toward the cap from admission on, before their first observation is learned.
    for (const m of fresh) this.admitted.add(m);
  }

  private async learn(obs: ValidObservation[]): Promise<void> {
    const base = await this.basePredict(obs.map((o) => o.prompt), this.opts.learnBase);
    // Group by target, keeping order: a batch is scored against the state before it, then learned at once.
    const groups = new Map<Target, number[]>();
    obs.forEach((o, i) => {
      let t = this.targets.get(o.model);
      if (!t) {
        if (this.targets.size >= this.maxModels) { this.refused++; return; }
        t = this.newTarget();
        this.targets.set(o.model, t);
      }
      (groups.get(t) ?? groups.set(t, []).get(t)!).push(i);
    });
    for (const [t, idx] of groups) {
      const xs: number[] = [], ys: number[] = [];
      const d = await this.memberDeltas(t, idx.map((i) => obs[i]!.prompt));
      for (const [j, i] of idx.entries()) {
        const e = base[i]!, o = obs[i]!;
        // Prequential: score what would have been predicted before learning this observation.
        const x = this.inputOf(t, e, d?.[j]);
        const { expectedTokens, reserveTokens } = this.point(t, x, e.pred, this.quantile);
        t.stats.push(expectedTokens, o.output_tokens, reserveTokens, e.pred.expectedTokens, this.baseReserve(e.pred, this.quantile));
        xs.push(x);
        ys.push(Math.log1p(o.output_tokens));
      }
      t.calibrator.observeBatch(xs, ys, [this.quantile]);
      if (t.fast) idx.forEach((i, j) => { const ff = base[i]!.ff; if (ff) t.fast!.step(ff.h, ys[j]!); });
    }
    for (const o of obs) if (o.seq !== undefined && o.seq > this.learnedSeq) this.learnedSeq = o.seq;
  }

  /** Point estimate and reservation of a target with state, for calibrator input x. */
  private point(t: Target, x: number, b: Prediction, q: number): { expectedTokens: number; reserveTokens: number } {
    if (t.calibrator.size === 0) return { expectedTokens: b.expectedTokens, reserveTokens: this.baseReserve(b, q) };
    const cal = t.calibrator;
    return {
      expectedTokens: Math.max(0, Math.expm1(cal.pointLog(x))),
      reserveTokens: Math.max(0, Math.ceil(Math.expm1(cal.reserveLog(x, q, Math.log1p(this.baseReserve(b, q)))))),
    };
  }

  private assemble(t: Target | undefined, e: BaseEntry, q: number, model: string, delta?: number): OnlinePrediction {
    const b = e.pred;
    const baseReserve = this.baseReserve(b, q);
    if (!t || t.calibrator.size === 0) {
      return { ...b, reserveTokens: baseReserve, model, observations: t?.calibrator.n ?? 0 };
    }
    const cal = t.calibrator;
    const x = this.inputOf(t, e, delta);
    const { expectedTokens, reserveTokens } = this.point(t, x, b, q);
    // Bucket distribution: the learned residuals around the calibrated center, mixed with the base's.
    const k = bucketCount(this.buckets);
    const probs = new Array<number>(k).fill(0);
    const samples = cal.samplesLog(x);
    for (const s of samples) probs[bucketOf(this.buckets, Math.expm1(s))]! += 1;
    const m = samples.length;
    const bp = b.probabilities;
    const prior = bp ? BASE_PRIOR : 0;
    for (let c = 0; c < k; c++) probs[c] = (probs[c]! + (bp ? prior * bp[c]! : 0)) / (m + prior);
    let bucket = 0;
    for (let c = 1; c < k; c++) if (probs[c]! > probs[bucket]!) bucket = c;
    return { bucket, upperBound: upperBound(this.buckets, bucket), expectedTokens, probabilities: probs, reserveTokens, model, observations: cal.n };
  }

  /** What the base alone would reserve at q: its q-bucket's upper edge (or its point estimate without probabilities). */
  private baseReserve(b: Prediction, q: number): number {
    if (b.probabilities) return upperBound(this.buckets, quantileBucket(b.probabilities, q));
    return Math.max(b.upperBound, b.expectedTokens);
  }

  private async basePredict(prompts: string[], source: Predictor = this.base): Promise<BaseEntry[]> {
    const keys = prompts.map(promptKey);
    const missing: number[] = [];
    keys.forEach((k, i) => { if (!this.cache.has(k) && !missing.some((j) => keys[j] === k)) missing.push(i); });
    const got = new Map<string, BaseEntry>();
    if (missing.length) {
      const preds = await source.predictBatch(missing.map((i) => prompts[i]!)) as PredictionWithFeatures[];
      missing.forEach((i, j) => {
        const { features, ...pred } = preds[j]!;
        const ff = !this.fast ? undefined : features ?? (this.fast.ngram ? fastFeatures({ ngram: this.fast.ngram }, prompts[i]!) : undefined);
        const entry: BaseEntry = { pred, ...(ff ? { ff } : {}) };
        got.set(keys[i]!, entry);
        this.cache.set(keys[i]!, entry);
        // Bounded: drop the oldest entries (Map iterates in insertion order).
        if (this.cache.size > this.baseCacheSize) this.cache.delete(this.cache.keys().next().value!);
      });
    }
    return keys.map((k) => got.get(k) ?? this.cache.get(k)!);
  }

  /** Live quality per target (plain data for /metrics). */
  stats(): LiveStats[] {
    const margin = this.opts.driftMargin ?? 0.5;
    const minN = this.opts.minForDrift ?? 50;
    return [...this.targets].map(([model, t]) => {
      const s = t.stats.summary();
      const v = this.opts.validationMae;
      const { scale, slope } = t.calibrator.params();
      return { model, observations: t.calibrator.n, ...s, drift: v !== undefined && s.window >= minN && s.mae > (1 + margin) * v, scale, slope };
    });
  }

  snapshot(): LearnerSnapshot {
    const targets: Record<string, TargetSnapshot> = {};
    for (const [m, t] of this.targets) targets[m] = { calibrator: t.calibrator.toJSON(), stats: t.stats.toJSON(), ...(t.fast ? { fast: t.fast.toJSON() } : {}) };
    return { version: 1, learnedSeq: this.learnedSeq, targets };
  }

  /** Replace the learned state with a snapshot (validated: it is read from disk). */
  restore(snap: LearnerSnapshot, file?: string): void {
    const o = asObject(snap, { file });
    if (o.version !== 1) throw new LenpredError(`unknown snapshot version ${JSON.stringify(o.version)}`, { file, field: "version" });
    const targets = asObject(o.targets, { file, field: "targets" });
    this.targets.clear();
    this.admitted.clear();
    this.learnedSeq = typeof o.learnedSeq === "number" ? o.learnedSeq : 0;
    for (const [name, v] of Object.entries(targets).slice(0, this.maxModels)) {
      checkModelName(name, { file, field: `targets.${name}` });
      const t = asObject(v, { file, field: `targets.${name}` }) as unknown as TargetSnapshot;
      const c = t.calibrator;
      const finite = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "number" && Number.isFinite(x));
      if (!c || !finite(c.xs) || !finite(c.ys) || c.xs.length !== c.ys.length || !Array.isArray(c.aci) || !c.aci.every((p) => Array.isArray(p) && p.length === 2 && finite(p)) || !Number.isInteger(c.n)
        || (c.horizonErrors !== undefined && !(Array.isArray(c.horizonErrors) && c.horizonErrors.every(finite)))) {
        throw new LenpredError("malformed calibrator state", { file, field: `targets.${name}.calibrator` });
      }
      this.admitted.add(name);
      const fast = this.fast ? (t.fast ? FastHead.restore(t.fast, this.fast, this.fastOpts) : undefined) ?? FastHead.from(this.fast, this.fastOpts) : undefined;
      const st = t.stats;
      const okStats = st && (["expected", "actual", "reserve"] as const).every((k) => Array.isArray(st[k]) && st[k].every((v) => typeof v === "number"));
      const stats = okStats ? WindowStats.restore(st, this.statsWindow) : new WindowStats(this.statsWindow);
      this.targets.set(name, { calibrator: Calibrator.restore(c, this.calOpts), stats, ...(fast ? { fast } : {}) });
    }
  }

  async dispose(): Promise<void> {
    await this.idle();
    const d = (this.base as { dispose?: () => Promise<void> }).dispose;
    if (d) await d.call(this.base);
  }
}

const VALID = new WeakSet<object>();
function isValid(o: unknown): boolean {
  return typeof o === "object" && o !== null && VALID.has(o);
}
/** Mark observations that already went through validation (the service validates before storing). */
export function markValid(obs: ValidObservation[]): ValidObservation[] {
  for (const o of obs) VALID.add(o);
  return obs;
}

function promptKey(p: string): string {
  return createHash("sha1").update(p).digest("base64");
}
