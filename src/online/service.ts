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
import { join } from "node:path";
import { writeJsonAtomic } from "../util/atomic.js";
import { LenpredError } from "../util/errors.js";
import { readJsonFile } from "../util/json-file.js";
import { existsSync } from "node:fs";
import { markValid, OnlineLearner, type LearnerSnapshot, type OnlinePrediction } from "./learner.js";
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
}

export interface ServiceStats {
  targets: LiveStats[];
  /** Observations accepted (durable when there is a store). */
  accepted: number;
  refused: number;
  store?: ObservationStore["counters"] & { lastSeq: number };
  /** Observations learned again from the store at start-up. */
  resumed: number;
}

export class OnlineService {
  private accepted = 0;
  private resumed = 0;
  private snapshotSeq = 0;
  private snapshotting: Promise<void> | undefined;
  /** Background learning failures (the observation is durable; it will be relearned on restart). */
  learnErrors = 0;

  private constructor(readonly learner: OnlineLearner, readonly store: ObservationStore | undefined, private readonly opts: OnlineServiceOptions) {}

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
    this.learner.observe(markValid(stored)).then(() => this.maybeSnapshot(), () => { this.learnErrors++; });
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

  stats(): ServiceStats {
    return {
      targets: this.learner.stats(),
      accepted: this.accepted,
      refused: this.learner.refused,
      resumed: this.resumed,
      ...(this.store ? { store: { ...this.store.counters, lastSeq: this.store.lastSeq } } : {}),
    };
  }

  /** Learn what is queued, snapshot, release the state dir. */
  async close(): Promise<void> {
    await this.learner.idle();
    await this.snapshotting;
    if (this.store) {
      await this.store.flush();
      await this.writeSnapshot();
      await this.store.close();
    }
  }
}
