/**
 * Micro-batching: prompts from concurrent requests wait in one bounded FIFO and go to the predictor
 * together, in one `predictBatch` call (one ONNX Runtime run), so per-call overhead is paid once per batch.
 *
 * Policy: one batch runs at a time (the model's intra-op threads already use the cores). A batch is
 * dispatched when the queue holds `maxBatch` prompts or its oldest prompt has waited `maxWaitMs`,
 * whichever comes first; while a batch runs, new prompts accumulate for the next. `maxBatch = 1` turns
 * batching off (each prompt is its own call, still one at a time). The queue is bounded in prompts:
 * `submit` rejects a whole request with QueueFullError (→ 503 + Retry-After) rather than queue part of it.
 * It is also bounded in time: a prompt still waiting `maxQueueMs` after it was queued is rejected with
 * QueueTimeoutError (→ 503 + Retry-After) — a scheduler is better served by a fast "retry later" than by a
 * prediction that arrives after the request it was for has been scheduled anyway.
 *
 * Quantile: every request may ask for its own conservative-mode quantile, which the predictor applies when
 * it decodes (for a regression head it is not a post-processing of probabilities). A dispatched batch is
 * therefore split by quantile into one `predictBatch` call per distinct value, in queue order — a single
 * call when every client uses the same q, the usual case for a scheduler.
 *
 * Failure isolation: when a call with several prompts throws, its prompts are retried in halves (bisection),
 * so one prompt the predictor cannot handle fails alone and the innocent prompts batched with it are answered.
 */
import type { PredictOptions } from "../predictor/length-predictor.js";
import type { Prediction } from "../model/prediction.js";

/** What the batcher drives: `LengthPredictor` (any plain `Predictor` works when no quantile is asked for). */
export interface BatchPredictor {
  readonly name: string;
  predictBatch(prompts: string[], opts?: PredictOptions): Promise<Prediction[]>;
}

export interface BatcherOptions {
  maxBatch: number;
  maxWaitMs: number;
  /** Prompts allowed to wait (not counting the batch being run). */
  maxQueue: number;
  /** Longest a prompt may wait in the queue before it is refused with QueueTimeoutError. Default: no limit. */
  maxQueueMs?: number;
  /** Whether a failed call's prompts should be retried in halves (default: always); false for errors every prompt would hit. */
  splitOnError?: (error: unknown, quantile: number | undefined) => boolean;
  /** Called after every predictor call with its size, duration and outcome, e.g. for metrics. */
  onBatch?: (size: number, seconds: number, ok: boolean, detail: { quantile?: number; error?: unknown }) => void;
  /** Called when the batcher turns busy (a prompt queued or running) and idle again, e.g. to pause background work. */
  onBusyChange?: (busy: boolean) => void;
}

export class QueueFullError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super("prediction queue is full");
  }
}

export class QueueTimeoutError extends Error {
  constructor(readonly waitedMs: number, readonly retryAfterSeconds: number) {
    super(`the prediction waited ${Math.round(waitedMs)} ms in the queue, more than the server's queue-time budget`);
  }
}

export class ShuttingDownError extends Error {
  constructor() {
    super("server is shutting down");
  }
}

interface Item {
  prompt: string;
  quantile: number | undefined;
  enqueuedAt: number;
  resolve: (p: Prediction) => void;
  reject: (e: unknown) => void;
}

export class MicroBatcher {
  private queue: Item[] = [];
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  /** Fires when the oldest queued prompt runs out of its queue-time budget. */
  private expiryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Whether prompts are queued or running, as last reported to onBusyChange. */
  private active = false;
  private idleWaiters: Array<() => void> = [];
  /** Smoothed seconds per batch, for Retry-After. */
  private batchSeconds = 0;

  constructor(private readonly predictor: BatchPredictor, private readonly opts: BatcherOptions) {
    for (const k of ["maxBatch", "maxQueue"] as const) {
      if (!(Number.isInteger(opts[k]) && opts[k] >= 1)) throw new RangeError(`${k} must be an integer >= 1, got ${opts[k]}`);
    }
    if (!(Number.isFinite(opts.maxWaitMs) && opts.maxWaitMs >= 0)) throw new RangeError(`maxWaitMs must be >= 0, got ${opts.maxWaitMs}`);
    if (opts.maxQueueMs !== undefined && !(opts.maxQueueMs > 0)) throw new RangeError(`maxQueueMs must be > 0, got ${opts.maxQueueMs}`);
  }

  /** Prompts waiting for a batch. */
  get depth(): number {
    return this.queue.length;
  }

  get busy(): boolean {
    return this.running;
  }

  /** Queue the prompts (decoded at `quantile`, if given); resolves with their predictions in order. All-or-nothing admission. */
  submit(prompts: readonly string[], quantile?: number): Promise<Prediction[]> {
    if (this.closed) return Promise.reject(new ShuttingDownError());
    if (this.queue.length + prompts.length > this.opts.maxQueue) {
      return Promise.reject(new QueueFullError(this.retryAfter()));
    }
    const now = performance.now();
    const results = prompts.map((prompt) => new Promise<Prediction>((resolve, reject) => {
      this.queue.push({ prompt, quantile, enqueuedAt: now, resolve, reject });
    }));
    this.setActive(true);
    this.schedule();
    this.armExpiry();
    return Promise.all(results);
  }

  /** Stop admitting work; resolves once every queued prompt has been answered. */
  async close(): Promise<void> {
    this.closed = true;
    // Pending prompts must not wait out maxWaitMs when nothing else can join them.
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.expiryTimer) {
      clearTimeout(this.expiryTimer);
      this.expiryTimer = undefined;
    }
    this.schedule(true);
    if (!this.running && this.queue.length === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private setActive(active: boolean): void {
    if (active === this.active) return;
    this.active = active;
    this.opts.onBusyChange?.(active);
  }

  private retryAfter(): number {
    // Time to work off the current queue, at least 1 s (Retry-After has whole-second resolution).
    const batches = Math.ceil(this.queue.length / this.opts.maxBatch) + 1;
    return Math.max(1, Math.ceil(batches * this.batchSeconds));
  }

  /**
   * Reject every prompt that has waited maxQueueMs (the queue is FIFO, so they are a prefix) and re-arm
   * for the next one. While closing, queued prompts are always answered instead (the drain promise).
   */
  private armExpiry(): void {
    const budget = this.opts.maxQueueMs;
    if (budget === undefined || this.closed || this.expiryTimer) return;
    const now = performance.now();
    const expired: Item[] = [];
    while (this.queue.length > 0 && now - this.queue[0]!.enqueuedAt >= budget) expired.push(this.queue.shift()!);
    if (expired.length > 0) {
      const retry = this.retryAfter();
      for (const it of expired) it.reject(new QueueTimeoutError(now - it.enqueuedAt, retry));
      if (this.queue.length === 0 && !this.running) this.setActive(false);
    }
    if (this.queue.length === 0) return;
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined;
      this.armExpiry();
    }, Math.max(1, budget - (now - this.queue[0]!.enqueuedAt)));
    this.expiryTimer.unref?.();
  }

  private schedule(now = false): void {
    if (this.running) return;
    if (this.queue.length === 0) {
      this.setActive(false);
      const waiters = this.idleWaiters.splice(0);
      for (const w of waiters) w();
      return;
    }
    const age = performance.now() - this.queue[0]!.enqueuedAt;
    if (now || this.closed || this.queue.length >= this.opts.maxBatch || age >= this.opts.maxWaitMs) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      void this.run();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.schedule(true);
      }, Math.max(0, this.opts.maxWaitMs - age));
    }
  }

  private async run(): Promise<void> {
    this.running = true;
    const batch = this.queue.splice(0, this.opts.maxBatch);
    if (this.expiryTimer) {
      clearTimeout(this.expiryTimer);
      this.expiryTimer = undefined;
    }
    this.armExpiry();
    const t0 = performance.now();
    try {
      for (const group of byQuantile(batch)) await this.call(group);
    } finally {
      const seconds = (performance.now() - t0) / 1000;
      this.batchSeconds = this.batchSeconds === 0 ? seconds : 0.8 * this.batchSeconds + 0.2 * seconds;
      this.running = false;
      // Prompts that arrived during the run wait only the rest of their maxWaitMs (usually nothing).
      this.schedule();
    }
  }

  /**
   * Predictor calls for prompts sharing a quantile; settles every item, never throws. A failing call with
   * several prompts is bisected until the failing prompts are alone, so only they get the error.
   */
  private async call(items: Item[]): Promise<void> {
    const quantile = items[0]!.quantile;
    const t0 = performance.now();
    let error: unknown;
    try {
      const preds = await this.predictor.predictBatch(items.map((i) => i.prompt), quantile === undefined ? undefined : { quantile });
      if (!Array.isArray(preds) || preds.length !== items.length) {
        throw new Error(`predictor ${this.predictor.name} returned ${Array.isArray(preds) ? preds.length : typeof preds} predictions for ${items.length} prompts`);
      }
      items.forEach((item, i) => item.resolve(preds[i]!));
    } catch (e) {
      error = e;
    }
    try {
      this.opts.onBatch?.(items.length, (performance.now() - t0) / 1000, error === undefined, { quantile, error });
    } catch {
      // A metrics callback must not stall the queue.
    }
    if (error === undefined) return;
    if (items.length === 1 || this.opts.splitOnError?.(error, quantile) === false) {
      for (const item of items) item.reject(error);
      return;
    }
    const mid = Math.ceil(items.length / 2);
    await this.call(items.slice(0, mid));
    await this.call(items.slice(mid));
  }
}

/** Items grouped by quantile, groups in order of their first item, items in queue order. */
function byQuantile(items: Item[]): Item[][] {
  const groups = new Map<number | undefined, Item[]>();
  for (const it of items) {
    const g = groups.get(it.quantile);
    if (g) g.push(it);
    else groups.set(it.quantile, [it]);
  }
  return [...groups.values()];
}
