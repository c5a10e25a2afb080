/**
 * `OnlineService`: an `OnlineLearner` with an optional durable state dir — what `lenpred serve` (phase 2)
 * mounts behind `POST /v1/observe`, `POST /v1/predict` and `/metrics`.
 *
 *  - `observe(body)` validates (LenpredError naming the field), checks the target cap, appends to the store and
 *    resolves once the observations are durable (→ 202); learning follows in the background, in order.
 *  - Restart: the snapshot (learned state up to a seq) is loaded, then the stored observations after that seq
 *    are learned again, so nothing acknowledged is lost. Snapshots are written every `snapshotEvery` learned
 *    observations and on close.
 *  - Without a state dir it learns in memory only.
 */
import { createHash } from "node:crypto";
import { mkdir, rename } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { readModelMeta } from "../model-dir/index.js";
import type { Predictor } from "../model/prediction.js";
import { DEFAULT_RETRAIN, loadMemberInProcess, removeDir, retrainCandidate, type MemberLoader, type RetrainConfig, type RetrainResult, type Sample } from "./retrain.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { LenpredError } from "../util/errors.js";
import { readJsonFile } from "../util/json-file.js";
import type { YieldGate, YieldGateStats } from "../util/yield-gate.js";
import { existsSync } from "node:fs";
import type { OnlineLearner} from "./learner.js";
import { markValid, type LearnerSnapshot, type OnlinePrediction } from "./learner.js";
import type { ValidObservation } from "./observation.js";
import type { LiveStats } from "./stats.js";
import { ObservationStore, type StoreOptions } from "./store.js";

export const SNAPSHOT_FILE = "snapshot.json";

export interface OnlineServiceOptions {
  stateDir?: string;
  store?: StoreOptions;
  /** Write a snapshot after this many newly learned observations (default 5000). */
  snapshotEvery?: number;
  /** Observations learned again per batch when resuming. */
  resumeBatch?: number;
  /**
   * Background retraining of the DistilBERT member per target (needs a state dir, and a base loaded from a
   * model directory with a DistilBERT member); false = off.
   */
  retrain?: Partial<RetrainConfig> | false;
  /**
   * Where retrained members are loaded and run: default in this thread; `lenpred serve` loads them in its
   * predictor worker (the learner's `slowMember` is then the worker's base member).
   */
  loadMember?: MemberLoader;
  /**
   * Foreground work (predictions) the retrain child yields to: it is stopped while the gate is busy. Without
   * one it only runs at the lowest CPU priority.
   */
  yieldGate?: YieldGate;
}

export const MEMBERS_FILE = "members.json";

export interface ServiceStats {
  targets: LiveStats[];
  /** Observations accepted (durable when there is a store). */
  accepted: number;
  refused: number;
  store?: ObservationStore["counters"] & { lastSeq: number };
  /** Observations learned again from the store at start-up. */
  resumed: number;
  /** Retrains run (and swapped in), and the last result per target. */
  retrains: number;
  retrainsAccepted: number;
  lastRetrain: RetrainResult[];
  /** Whether a retrain is running now. */
  retraining: boolean;
  /** How often and how long retrain children were stopped for predictions in flight (with a yield gate). */
  retrainYield?: YieldGateStats;
}

export class OnlineService {
  private accepted = 0;
  private resumed = 0;
  private snapshotSeq = 0;
  private snapshotting: Promise<void> | undefined;
  /** Background learning failures (the observation is durable; it will be relearned on restart). */
  learnErrors = 0;
  private readonly retrainCfg: RetrainConfig | undefined;
  private baseMemberDir: string | undefined;
  /** Retrained members in use: target → directory and predictor. */
  private readonly members = new Map<string, { dir: string; predictor: Predictor }>();
  private readonly sinceRetrain = new Map<string, number>();
  private retraining: Promise<RetrainResult> | undefined;
  /** Aborted on close: a running retrain's child is killed rather than waited for. */
  private readonly closing = new AbortController();
  private retrainCount = 0;
  private retrainsAccepted = 0;
  private readonly lastRetrain = new Map<string, RetrainResult>();

  private constructor(readonly learner: OnlineLearner, readonly store: ObservationStore | undefined, private readonly opts: OnlineServiceOptions) {
    this.retrainCfg = opts.retrain === false || !opts.stateDir || !learner.hasSlowMember ? undefined : { ...DEFAULT_RETRAIN, ...opts.retrain };
  }

  static async open(learner: OnlineLearner, opts: OnlineServiceOptions = {}): Promise<OnlineService> {
    if (!opts.stateDir) return new OnlineService(learner, undefined, opts);
    const store = await ObservationStore.open(opts.stateDir, opts.store);
    const svc = new OnlineService(learner, store, opts);
    try {
      const snapFile = join(opts.stateDir, SNAPSHOT_FILE);
      if (existsSync(snapFile)) {
        learner.restore(await readJsonFile(snapFile) as LearnerSnapshot, snapFile);
        svc.snapshotSeq = learner.learnedSeq;
      }
      let batch: ValidObservation[] = [];
      const size = opts.resumeBatch ?? 256;
      for await (const r of store.read(learner.learnedSeq)) {
        batch.push(r);
        if (batch.length >= size) { await svc.relearn(batch); batch = []; }
      }
      if (batch.length) await svc.relearn(batch);
      if (svc.retrainCfg) await svc.loadMembers();
    } catch (e) {
      await store.close();
      throw e;
    }
    return svc;
  }

  private async relearn(batch: ValidObservation[]): Promise<void> {
    // Stored records were validated before they were written; a cap refusal here only skips them.
    await this.learner.observe(markValid(batch)).catch((e: unknown) => { if (!(e instanceof LenpredError)) throw e; });
    this.resumed += batch.length;
  }

  predictBatch(prompts: string[], o: { model?: string; quantile?: number } = {}): Promise<OnlinePrediction[]> {
    return this.learner.predictBatch(prompts, o);
  }

  /** Accept observations: resolves with their count once durable (learning continues in the background). */
  async observe(body: unknown): Promise<{ accepted: number; lastSeq?: number }> {
    const obs = this.learner.admit(body);
    const stored = this.store ? await this.store.append(obs) : obs;
    this.accepted += stored.length;
    this.learner.observe(markValid(stored)).then(() => { this.maybeSnapshot(); this.maybeRetrain(stored); }, () => { this.learnErrors++; });
    return { accepted: stored.length, lastSeq: this.store?.lastSeq };
  }

  /** Resolves when every accepted observation is learned and no snapshot is being written. */
  async idle(): Promise<void> {
    await this.learner.idle();
    await new Promise((r) => setImmediate(r)); // let the last learn's continuation start its snapshot
    while (this.snapshotting) await this.snapshotting;
  }

  private maybeSnapshot(): void {
    if (!this.store || this.snapshotting) return;
    if (this.learner.learnedSeq - this.snapshotSeq < (this.opts.snapshotEvery ?? 5000)) return;
    this.snapshotting = this.writeSnapshot().finally(() => { this.snapshotting = undefined; });
  }

  /** Write the learned state (atomically) so a restart need not relearn everything. */
  async writeSnapshot(): Promise<void> {
    if (!this.opts.stateDir) return;
    const snap = this.learner.snapshot(); // taken synchronously: consistent with snap.learnedSeq
    await writeJsonAtomic(join(this.opts.stateDir, SNAPSHOT_FILE), snap);
    this.snapshotSeq = snap.learnedSeq;
  }

  private maybeRetrain(batch: ValidObservation[]): void {
    const cfg = this.retrainCfg;
    if (!cfg || cfg.every <= 0) return;
    for (const o of batch) this.sinceRetrain.set(o.model, (this.sinceRetrain.get(o.model) ?? 0) + 1);
    if (this.retraining) return;
    for (const [model, n] of this.sinceRetrain) {
      if (n < cfg.every) continue;
      this.retrain(model).catch(() => undefined);
      return;
    }
  }

  /** Resolves when no retrain is running (including one started by the last learned batch). */
  async retrainIdle(): Promise<void> {
    await this.idle();
    while (this.retraining) await this.retraining.catch(() => undefined);
  }

  /**
   * Retrain one target's DistilBERT member now (in a child process) and swap it in if it is better on the most
   * recent held-out observations. One retrain at a time; predictions never wait for it.
   */
  retrain(model: string, overrides: Partial<RetrainConfig> = {}): Promise<RetrainResult> {
    if (!this.retrainCfg) return Promise.reject(new LenpredError("retraining needs a state dir and a base model directory with a DistilBERT member"));
    if (this.retraining) return Promise.reject(new LenpredError("a retrain is already running"));
    this.sinceRetrain.set(model, 0);
    const run = this.runRetrain(model, { ...this.retrainCfg, ...overrides });
    this.retraining = run.finally(() => { this.retraining = undefined; });
    this.retraining.catch(() => undefined); // the caller handles `run`; this copy must not be an unhandled rejection
    return run;
  }

  private async runRetrain(model: string, cfg: RetrainConfig): Promise<RetrainResult> {
    const stateDir = this.opts.stateDir!;
    const work = join(stateDir, "retrain", `work-${process.pid}-${Date.now()}`);
    try {
      const samples: Sample[] = [];
      for await (const r of this.store!.read()) if (r.model === model) samples.push({ prompt: r.prompt, output_tokens: r.output_tokens, prompt_tokens: r.prompt_tokens });
      const current = this.members.get(model);
      const initDir = current?.dir ?? await this.baseMember();
      const currentPredictor = this.learner.memberOf(model)!;
      const { result, candidate, candidateDir, meanShift } = await retrainCandidate({ model, samples: samples.slice(-cfg.maxSamples), initDir, current: currentPredictor, buckets: this.learner.buckets, work, cfg, loadMember: this.loadMember, gate: this.opts.yieldGate, signal: this.closing.signal });
      if (candidate && candidateDir) {
        const dir = join(stateDir, "members", safeName(model), String(Date.now()));
        await mkdir(join(dir, ".."), { recursive: true });
        await rename(candidateDir, dir); // the loaded session no longer needs the path
        const old = this.learner.setMember(model, candidate, meanShift ?? 0);
        this.members.set(model, { dir, predictor: candidate });
        await this.writeMembers();
        // In-flight predictions may still hold the old member: dispose it a little later.
        if (old) setTimeout(() => { disposeOf(old).catch(() => undefined); }, 30_000).unref();
        if (current) setTimeout(() => { removeDir(current.dir).catch(() => undefined); }, 30_000).unref();
      }
      if (this.closing.signal.aborted && !result.accepted) return result; // cut short by close(): not a result
      this.retrainCount++;
      if (result.accepted) this.retrainsAccepted++;
      this.lastRetrain.set(model, result);
      return result;
    } finally {
      await removeDir(work);
    }
  }

  /** The base's DistilBERT member directory (where a first retrain starts). */
  private async baseMember(): Promise<string> {
    if (this.baseMemberDir) return this.baseMemberDir;
    const dir = this.learner.modelDir;
    if (!dir) throw new LenpredError("retraining needs the learner to be loaded from a model directory (OnlineLearner.load)");
    const meta = await readModelMeta(dir);
    if (meta.kind === "distilbert") return (this.baseMemberDir = resolve(dir));
    for (const m of Array.isArray(meta.members) ? meta.members as { dir?: unknown }[] : []) {
      if (typeof m.dir !== "string") continue;
      const md = resolve(dir, m.dir);
      if ((await readModelMeta(md)).kind === "distilbert") return (this.baseMemberDir = md);
    }
    throw new LenpredError("the base model has no DistilBERT member to retrain", { file: dir });
  }

  private async writeMembers(): Promise<void> {
    const stateDir = this.opts.stateDir!;
    await writeJsonAtomic(join(stateDir, MEMBERS_FILE), Object.fromEntries([...this.members].map(([m, v]) => [m, relative(resolve(stateDir), resolve(v.dir))])));
  }

  /** Put the retrained members recorded in the state dir back in use. */
  private async loadMembers(): Promise<void> {
    const stateDir = resolve(this.opts.stateDir!);
    const file = join(stateDir, MEMBERS_FILE);
    if (!existsSync(file)) return;
    const list = await readJsonFile(file) as Record<string, unknown>;
    for (const [model, rel] of Object.entries(list ?? {})) {
      if (typeof rel !== "string" || !this.learner.models().includes(model)) continue;
      const dir = resolve(stateDir, rel);
      if (!dir.startsWith(stateDir + "/") || !existsSync(dir)) continue;
      const predictor = await this.loadMember(dir);
      this.learner.setMember(model, predictor);
      this.members.set(model, { dir, predictor });
    }
  }

  private get loadMember(): MemberLoader {
    return this.opts.loadMember ?? loadMemberInProcess;
  }

  stats(): ServiceStats {
    return {
      targets: this.learner.stats(),
      accepted: this.accepted,
      refused: this.learner.refused,
      resumed: this.resumed,
      retrains: this.retrainCount,
      retrainsAccepted: this.retrainsAccepted,
      lastRetrain: [...this.lastRetrain.values()],
      retraining: this.retraining !== undefined,
      ...(this.opts.yieldGate ? { retrainYield: this.opts.yieldGate.stats() } : {}),
      ...(this.store ? { store: { ...this.store.counters, lastSeq: this.store.lastSeq } } : {}),
    };
  }

  /** Learn what is queued, stop a running retrain (its child is killed: a retrain can take minutes), snapshot, release the state dir. */
  async close(): Promise<void> {
    await this.idle();
    this.closing.abort();
    await this.retraining?.catch(() => undefined);
    await this.snapshotting;
    for (const m of this.members.values()) await disposeOf(m.predictor);
    if (this.store) {
      await this.store.flush();
      await this.writeSnapshot();
      await this.store.close();
    }
  }
}

async function disposeOf(p: Predictor | undefined): Promise<void> {
  const d = (p as { dispose?: () => Promise<void> } | undefined)?.dispose;
  if (d) await d.call(p);
}

/** A directory name for a target name (which may hold '/' or ':'). */
function safeName(model: string): string {
  return `${model.replace(/[^\w.-]/g, "_").slice(0, 60)}-${createHash("sha1").update(model).digest("hex").slice(0, 8)}`;
}
