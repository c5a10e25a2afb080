/**
 * Admission control of `lenpred proxy`, as a pure module (no HTTP, no timers; the clock is injected).
 *
 * Requests wait here, in the proxy, and at most `maxConcurrency` are in flight upstream. Which waiting
 * request goes next is a queue policy:
 *   - `fcfs`: arrival order (the control).
 *   - `sjf`:  shortest predicted output first, with aging. The key of a request is
 *               key = log2(max(1, expectedTokens)) + arrivalSeconds / agingHalfLifeSeconds
 *             and the smallest key goes first (ties: arrival order). Equivalently, every `agingHalfLife`
 *             seconds a request has waited counts as halving its predicted length, so the order among waiting
 *             requests never changes while they wait (the key is fixed at arrival) and nothing starves: a
 *             request predicted P tokens long is served before anything that arrives more than
 *             `agingHalfLife × log2(P)` seconds after it.
 *   - `s3`:   the sjf order, and in addition a KV-cache budget: a request is admitted only while the sum of the
 *             reservations (prompt tokens + reserveTokens) of the in-flight requests plus its own fits in
 *             `kvBudgetTokens`. The head of the queue is never bypassed (a big request is not starved by a
 *             stream of small ones); a request bigger than the whole budget is admitted alone. A request that
 *             outgrows its reservation while running gets it extended (`extend`), which is counted.
 */

export type PolicyName = "fcfs" | "sjf" | "s3";
export const POLICIES: readonly PolicyName[] = ["fcfs", "sjf", "s3"];

export interface Job {
  /** Point estimate of the output length (the sjf/s3 order). */
  expectedTokens: number;
  /** Output tokens to reserve (s3). */
  reserveTokens: number;
  /** Prompt tokens (s3 reserves them too). */
  promptTokens: number;
}

export interface Ticket<J extends Job = Job> {
  readonly job: J;
  readonly seq: number;
  /** Clock value at enqueue / admission (ms). */
  readonly enqueuedAt: number;
  admittedAt?: number;
  /** KV tokens reserved for it while in flight (s3 accounting; tracked for every policy). */
  reserved: number;
  state: "queued" | "running" | "done" | "cancelled";
}

/** Orders the waiting tickets. `peek` is the next candidate; admission checks happen in the Scheduler. */
export interface QueuePolicy<J extends Job = Job> {
  readonly name: PolicyName;
  push(t: Ticket<J>): void;
  peek(): Ticket<J> | undefined;
  shift(): Ticket<J> | undefined;
  remove(t: Ticket<J>): boolean;
  readonly size: number;
}

export class FcfsQueue<J extends Job = Job> implements QueuePolicy<J> {
  readonly name: PolicyName = "fcfs";
  private items: Ticket<J>[] = [];
  private head = 0;
  push(t: Ticket<J>): void {
    this.items.push(t);
  }
  peek(): Ticket<J> | undefined {
    return this.items[this.head];
  }
  shift(): Ticket<J> | undefined {
    const t = this.items[this.head];
    if (t === undefined) return undefined;
    this.head++;
    // Compact now and then so the array does not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return t;
  }
  remove(t: Ticket<J>): boolean {
    const i = this.items.indexOf(t, this.head);
    if (i < 0) return false;
    this.items.splice(i, 1);
    return true;
  }
  get size(): number {
    return this.items.length - this.head;
  }
}

/** The sjf key of a ticket (see the module comment); smaller goes first. */
export function sjfKey(expectedTokens: number, arrivalMs: number, agingHalfLifeSeconds: number): number {
  // No usable prediction (NaN/Infinity): treat as very long (2^20 tokens) rather than as short.
  const size = Math.log2(Math.max(1, Number.isFinite(expectedTokens) ? expectedTokens : 2 ** 20));
  return size + (Number.isFinite(agingHalfLifeSeconds) ? arrivalMs / 1000 / agingHalfLifeSeconds : 0);
}

/** Sorted by the fixed sjf key; binary insertion keeps arrival order among equal keys. */
export class SjfQueue<J extends Job = Job> implements QueuePolicy<J> {
  private items: Array<{ key: number; t: Ticket<J> }> = [];
  constructor(readonly agingHalfLifeSeconds: number, readonly name: PolicyName = "sjf") {
    if (!(agingHalfLifeSeconds > 0)) throw new RangeError(`agingHalfLifeSeconds must be > 0, got ${agingHalfLifeSeconds}`);
  }
  push(t: Ticket<J>): void {
    const key = sjfKey(t.job.expectedTokens, t.enqueuedAt, this.agingHalfLifeSeconds);
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.items[mid]!.key <= key) lo = mid + 1;
      else hi = mid;
    }
    this.items.splice(lo, 0, { key, t });
  }
  peek(): Ticket<J> | undefined {
    return this.items[0]?.t;
  }
  shift(): Ticket<J> | undefined {
    return this.items.shift()?.t;
  }
  remove(t: Ticket<J>): boolean {
    const i = this.items.findIndex((x) => x.t === t);
    if (i < 0) return false;
    this.items.splice(i, 1);
    return true;
  }
  get size(): number {
    return this.items.length;
  }
}

export interface SchedulerOptions {
  policy: PolicyName;
  maxConcurrency: number;
  /** Most requests waiting; `enqueue` refuses beyond it (→ 503). */
  maxQueue: number;
  /** s3 only: KV tokens the in-flight requests may reserve in total. */
  kvBudgetTokens?: number;
  /** sjf/s3 aging (see the module comment). Default 10 s. */
  agingHalfLifeSeconds?: number;
  now?: () => number;
}

export class QueueFullError extends Error {
  constructor(readonly maxQueue: number) {
    super(`proxy queue is full (${maxQueue} requests waiting)`);
  }
}

/**
 * The admission controller: `enqueue` a job and get a ticket; the `onAdmit` callback fires (synchronously,
 * from `enqueue`/`release`/`cancel`) when the ticket may go upstream; call `release` when its response is over.
 */
export class Scheduler<J extends Job = Job> {
  readonly policy: PolicyName;
  readonly maxConcurrency: number;
  readonly maxQueue: number;
  readonly kvBudgetTokens: number;
  private readonly queue: QueuePolicy<J>;
  private readonly now: () => number;
  private readonly running = new Set<Ticket<J>>();
  private readonly waiters = new Map<Ticket<J>, () => void>();
  private seq = 0;
  /** Sum of the reservations of the in-flight requests. */
  reservedTokens = 0;
  /** How many reservations were extended because a request outgrew them. */
  extensions = 0;

  constructor(opts: SchedulerOptions) {
    if (!(Number.isInteger(opts.maxConcurrency) && opts.maxConcurrency >= 1)) throw new RangeError(`maxConcurrency must be an integer >= 1, got ${opts.maxConcurrency}`);
    if (!(Number.isInteger(opts.maxQueue) && opts.maxQueue >= 1)) throw new RangeError(`maxQueue must be an integer >= 1, got ${opts.maxQueue}`);
    this.policy = opts.policy;
    this.maxConcurrency = opts.maxConcurrency;
    this.maxQueue = opts.maxQueue;
    this.now = opts.now ?? (() => performance.now());
    const aging = opts.agingHalfLifeSeconds ?? 10;
    if (opts.policy === "fcfs") this.queue = new FcfsQueue<J>();
    else if (opts.policy === "sjf") this.queue = new SjfQueue<J>(aging, "sjf");
    else if (opts.policy === "s3") this.queue = new SjfQueue<J>(aging, "s3");
    else throw new RangeError(`unknown policy '${String(opts.policy)}' (${POLICIES.join(", ")})`);
    if (opts.policy === "s3" && !(Number.isFinite(opts.kvBudgetTokens) && opts.kvBudgetTokens! >= 1)) {
      throw new RangeError(`policy s3 needs kvBudgetTokens >= 1, got ${opts.kvBudgetTokens}`);
    }
    this.kvBudgetTokens = opts.policy === "s3" ? opts.kvBudgetTokens! : Infinity;
  }

  get queued(): number {
    return this.queue.size;
  }

  get inFlight(): number {
    return this.running.size;
  }

  /** Queue a job; `onAdmit` runs once when it may go upstream (possibly before `enqueue` returns). */
  enqueue(job: J, onAdmit: () => void): Ticket<J> {
    if (this.queue.size >= this.maxQueue) throw new QueueFullError(this.maxQueue);
    const t: Ticket<J> = { job, seq: this.seq++, enqueuedAt: this.now(), reserved: 0, state: "queued" };
    this.queue.push(t);
    this.waiters.set(t, onAdmit);
    this.pump();
    return t;
  }

  /** The response of an admitted request is over: free its slot and reservation. */
  release(t: Ticket<J>): void {
    if (t.state !== "running") return;
    t.state = "done";
    this.running.delete(t);
    this.reservedTokens -= t.reserved;
    this.pump();
  }

  /** The client went away: drop a queued ticket, or release a running one. */
  cancel(t: Ticket<J>): void {
    if (t.state === "queued") {
      this.queue.remove(t);
      this.waiters.delete(t);
      t.state = "cancelled";
      this.pump();
    } else if (t.state === "running") {
      this.release(t);
    }
  }

  /**
   * A running request has produced `outputTokens` so far: when that outgrows its reservation, extend the
   * reservation to `max(outputTokens, 2 × reserveTokens)` output tokens (doubling, so a long answer is extended
   * O(log n) times) and count it. Returns whether it was extended. Extensions may overshoot the budget:
   * a running request cannot be paused from the proxy, so the budget only delays further admissions.
   */
  extend(t: Ticket<J>, outputTokens: number): boolean {
    if (t.state !== "running") return false;
    const outputReserved = t.reserved - t.job.promptTokens;
    if (outputTokens <= outputReserved) return false;
    const next = Math.max(outputTokens, 2 * Math.max(1, outputReserved));
    this.reservedTokens += next - outputReserved;
    t.reserved = t.job.promptTokens + next;
    this.extensions++;
    return true;
  }

  private fits(t: Ticket<J>): boolean {
    if (this.running.size >= this.maxConcurrency) return false;
    if (this.kvBudgetTokens === Infinity) return true;
    const need = t.job.promptTokens + t.job.reserveTokens;
    // Bigger than the whole budget: admitted alone, or it would wait forever.
    return this.reservedTokens + need <= this.kvBudgetTokens || this.running.size === 0;
  }

  private pump(): void {
    for (;;) {
      const t = this.queue.peek();
      if (t === undefined || !this.fits(t)) return;
      this.queue.shift();
      t.state = "running";
      t.admittedAt = this.now();
      t.reserved = t.job.promptTokens + t.job.reserveTokens;
      this.reservedTokens += t.reserved;
      this.running.add(t);
      const cb = this.waiters.get(t)!;
      this.waiters.delete(t);
      cb();
    }
  }
}
