/**
 * The simulator loop: iteration-stepped over one GPU's KV cache. Each iteration admits waiting requests
 * (prefill), advances every running sequence by one token, and costs `costModel.iterationTime`. What to
 * reserve, in which order and what happens on outgrowing a reservation is the policy's (policies.ts); how
 * memory is handed out is the KV pool's (kv-pool.ts). A new policy needs no change here.
 *
 * KV accounting: after a sequence has produced g tokens it holds prompt + g KV entries (the entry of the
 * newest token is counted as soon as it is produced), so a step needs room for prompt + g + 1.
 */
import { LenpredError } from "../util/errors.js";
import type { BucketScheme } from "../data/buckets.js";
import { costModel } from "./cost.js";
import { kvCapacityTokens, type SimProfile } from "./profile.js";
import { PagedPool, ReservationPool, type KvPool } from "./kv-pool.js";
import { POLICIES, type PolicyName } from "./policies.js";
import { FifoQueue, KeyedQueue, type WaitQueue } from "./queue.js";
import type { Predictions, Trace } from "./trace.js";

export interface SimOptions {
  /** Paged-attention block size in tokens. */
  blockSize?: number;
  /** Cap on concurrently running sequences (default: memory is the only limit). */
  maxBatch?: number;
  /** How many waiting requests first-fit admission may skip per iteration. */
  lookahead?: number;
  /** Keep a per-iteration memory timeline (for plots). */
  timeline?: boolean;
  /** Called after every iteration (tests check invariants through it). */
  observe?: (o: StepObservation) => void;
  /** Called every few hundred iterations with the number of finished requests. */
  onProgress?: (finished: number) => void;
}

export interface StepObservation {
  time: number;
  capacityTokens: number;
  /** Tokens reserved (reservation policies) or allocated in blocks (paged) during the iteration. */
  reservedTokens: number;
  /** KV entries actually written (Σ prompt + generated) during the iteration. */
  usedTokens: number;
  /** Sequences holding more KV than they were allocated (must be 0). */
  overAllocated: number;
  running: number;
}

export interface PolicyMetrics {
  requests: number;
  output_tokens: number;
  makespan_s: number;
  throughput_tokens_per_s: number;
  throughput_requests_per_s: number;
  latency_mean_s: number;
  latency_p50_s: number;
  latency_p99_s: number;
  ttft_p50_s: number;
  ttft_p99_s: number;
  iterations: number;
  mean_batch_size: number;
  max_batch_size: number;
  /** Time-weighted mean of KV entries in use / KV capacity. */
  memory_utilization: number;
  /** Time-weighted mean of reserved (or block-allocated) KV / capacity. */
  memory_reserved_fraction: number;
  peak_memory_reserved_fraction: number;
  preemptions: number;
  /** Prompt + already generated tokens prefilled again after a preemption (wasted work). */
  recomputed_tokens: number;
  /** Prompt tokens prefilled, plus recomputed tokens. */
  prefill_tokens: number;
  /** Output tokens produced (the first by the prefill, the rest by decode steps), each exactly once. */
  generated_tokens: number;
  /** Decode slots spent on already finished members of a static batch. */
  padding_tokens: number;
  /** recomputed / (prefill + generated) tokens. */
  wasted_work_fraction: number;
}

export interface Timeline { t: Float64Array; used: Float64Array; reserved: Float64Array }

export interface PolicyResult {
  name: PolicyName;
  metrics: PolicyMetrics;
  /** Per-request latency (finish − arrival), seconds, in request order. */
  latency: Float64Array;
  timeline?: Timeline;
}

class Series {
  private n = 0;
  private a = new Float64Array(1024);
  push(v: number): void {
    if (this.n === this.a.length) { const b = new Float64Array(this.a.length * 2); b.set(this.a); this.a = b; }
    this.a[this.n++] = v;
  }
  values(): Float64Array { return this.a.slice(0, this.n); }
}

export function simulatePolicy(
  name: PolicyName, trace: Trace, pred: Predictions, scheme: BucketScheme, profile: SimProfile, opts: SimOptions = {},
): PolicyResult {
  const n = trace.n;
  const P = trace.prompt, O = trace.output, A = trace.arrival;
  const cap = kvCapacityTokens(profile);
  const maxLen = profile.model.maxSeqLen;
  const maxBatch = opts.maxBatch ?? Infinity;
  const lookahead = opts.lookahead ?? 64;
  const bs = opts.blockSize ?? 16;
  if (!(Number.isInteger(bs) && bs > 0)) throw new LenpredError(`block size must be a positive integer, got ${bs}`, { field: "block-size" });
  if (!(maxBatch >= 1)) throw new LenpredError(`max batch must be >= 1, got ${maxBatch}`, { field: "max-batch" });
  for (let i = 0; i < n; i++) {
    if (P[i]! + O[i]! > maxLen) throw new LenpredError(`request ${i} needs ${P[i]! + O[i]!} tokens, above max sequence length ${maxLen} (build the trace with buildTrace)`);
  }
  const cost = costModel(profile);
  const policy = POLICIES[name]({ trace, pred, scheme, maxLen });

  // Per-request state.
  const gen = new Int32Array(n);
  const alloc = new Int32Array(n); // tokens reserved, or blocks × bs for paged
  const finish = new Float64Array(n);
  const firstTok = new Float64Array(n).fill(-1);

  const main: WaitQueue = policy.order === "shortest-predicted" ? new KeyedQueue(pred.expected) : new FifoQueue();
  const resume = new FifoQueue();
  const queued = (): number => main.size + resume.size;

  // Counters.
  let t = 0, finished = 0, iterations = 0, batchSum = 0, maxBatchSeen = 0;
  let preemptions = 0, recomputed = 0, prefillTokens = 0, generatedTokens = 0, paddingTokens = 0;
  let usedArea = 0, reservedArea = 0, peakReserved = 0;
  const tl = opts.timeline ? { t: new Series(), used: new Series(), reserved: new Series() } : undefined;
  let nextArrival = 0;

  const record = (dt: number, used: number, reserved: number, running: number, over: number): void => {
    usedArea += used * dt;
    reservedArea += reserved * dt;
    if (reserved > peakReserved) peakReserved = reserved;
    if (tl) { tl.t.push(t); tl.used.push(used / cap); tl.reserved.push(reserved / cap); }
    if (opts.observe) opts.observe({ time: t, capacityTokens: cap, reservedTokens: reserved, usedTokens: used, overAllocated: over, running });
    iterations++;
    if (opts.onProgress && (iterations & 255) === 0) opts.onProgress(finished);
  };

  const enqueueArrivals = (): void => {
    while (nextArrival < n && A[nextArrival]! <= t) main.push(nextArrival++);
  };

  if (policy.pool === "static-batch") {
    runStatic();
  } else {
    runContinuous();
  }

  function runStatic(): void {
    const B = Math.min(maxBatch, Math.floor(cap / maxLen));
    const batch: number[] = [];
    while (finished < n) {
      enqueueArrivals();
      if (main.size === 0) { t = A[nextArrival]!; continue; }
      batch.length = 0;
      while (batch.length < B && main.size > 0) batch.push(main.pop());
      const reserved = batch.length * maxLen;
      let longest = 0, prefill = 0, squares = 0;
      for (const i of batch) {
        longest = Math.max(longest, O[i]!);
        prefill += P[i]!;
        squares += P[i]! * P[i]!;
      }
      prefillTokens += prefill;
      // Iteration 1: prefill of the whole batch, which emits every member's first token.
      for (let step = 0; step < longest; step++) {
        let ctx = 0, active = 0, used = 0, over = 0;
        for (const i of batch) {
          const g = gen[i]!;
          if (step > 0) ctx += P[i]! + g;
          if (g < O[i]!) active++;
        }
        const dt = step === 0
          ? cost.iterationTime({ decodeSeqs: 0, decodeContext: 0, prefillTokens: prefill, prefillSquares: squares })
          : cost.iterationTime({ decodeSeqs: batch.length, decodeContext: ctx, prefillTokens: 0, prefillSquares: 0 });
        t += dt;
        for (const i of batch) {
          if (gen[i]! < O[i]!) {
            gen[i]!++;
            generatedTokens++;
            if (firstTok[i]! < 0) firstTok[i] = t;
          } else {
            paddingTokens++;
          }
          used += P[i]! + gen[i]!;
          if (opts.observe && P[i]! + gen[i]! > maxLen) over++;
        }
        batchSum += active;
        if (active > maxBatchSeen) maxBatchSeen = active;
        record(dt, used, reserved, batch.length, over);
      }
      // Static batches return together: every member completes when the longest one does.
      for (const i of batch) finish[i] = t;
      finished += batch.length;
      enqueueArrivals();
    }
  }

  function runContinuous(): void {
    const pool: KvPool = policy.pool === "paged" ? new PagedPool(cap, bs) : new ReservationPool(cap);
    const capacity = pool.capacity;
    let running = new Int32Array(Math.min(n, 1 << 16));
    let runCount = 0;
    let admitDirty = true;
    const fresh: number[] = [];
    const skipped: number[] = [];
    const skippedResume: number[] = [];

    const pushRunning = (i: number): void => {
      if (runCount === running.length) { const r = new Int32Array(running.length * 2); r.set(running); running = r; }
      running[runCount++] = i;
    };
    const preempt = (i: number): void => {
      pool.free += alloc[i]!;
      alloc[i] = 0;
      preemptions++;
      resume.push(i);
      admitDirty = true;
    };
    const admit = (i: number, need: number): void => {
      alloc[i] = need;
      pool.free -= need;
      const len = P[i]! + gen[i]!;
      prefillTokens += len;
      if (gen[i]! > 0) recomputed += len;
      fresh.push(i);
      pushRunning(i);
    };

    while (finished < n) {
      const before = nextArrival;
      enqueueArrivals();
      if (nextArrival !== before) admitDirty = true;
      if (runCount === 0 && queued() === 0) { t = A[nextArrival]!; continue; }

      // 1. Room for this step's token: a reservation pool checks the reservation (the policy decides what a
      //    sequence that outgrew it reserves next; it is preempted and re-queued at the front), the paged pool
      //    allocates a block and preempts the newest sequences when none is free.
      for (let k = 0; k < runCount; k++) {
        const i = running[k]!;
        const need = P[i]! + gen[i]! + 1;
        if (need <= alloc[i]!) continue;
        if (pool.kind === "reservation") {
          policy.onOutgrow(i, need);
          preempt(i);
          running[k] = -1;
          continue;
        }
        while (pool.free < pool.unit && runCount - 1 > k) {
          const v = running[--runCount]!;
          if (v >= 0) preempt(v);
        }
        if (pool.free >= pool.unit) {
          alloc[i]! += pool.unit;
          pool.free -= pool.unit;
        } else {
          preempt(i);
          running[k] = -1;
        }
      }
      let w = 0;
      for (let k = 0; k < runCount; k++) if (running[k]! >= 0) running[w++] = running[k]!;
      runCount = w;

      // 2. Admission.
      fresh.length = 0;
      if (admitDirty && runCount < maxBatch) {
        if (pool.kind === "paged") {
          // Head-of-line: stop at the first request that does not fit.
          while (runCount < maxBatch && queued() > 0) {
            const fromResume = resume.size > 0;
            const i = fromResume ? resume.pop() : main.pop();
            const need = pool.round(P[i]! + gen[i]! + 1);
            if (pool.canAdmit(need, runCount)) {
              admit(i, need);
            } else {
              (fromResume ? resume : main).unpop([i]);
              break;
            }
          }
        } else {
          // First-fit: skip up to `lookahead` requests that do not fit.
          skipped.length = 0;
          skippedResume.length = 0;
          let misses = 0;
          while (runCount < maxBatch && misses < lookahead && queued() > 0) {
            const fromResume = resume.size > 0;
            const i = fromResume ? resume.pop() : main.pop();
            const need = Math.max(policy.reserve(i), P[i]! + gen[i]! + 1);
            if (pool.canAdmit(need, runCount)) {
              admit(i, need);
            } else {
              (fromResume ? skippedResume : skipped).push(i);
              misses++;
            }
          }
          resume.unpop(skippedResume);
          main.unpop(skipped);
        }
        // Nothing more can be admitted until memory is freed or new requests arrive.
        admitDirty = false;
      }
      if (runCount === 0) {
        // Only possible when a single request cannot fit in an empty cache; guarded by profile validation.
        throw new LenpredError(`policy ${name}: a waiting request does not fit in an empty KV cache of ${capacity} tokens`);
      }

      // 3. Cost of the iteration: decode of the sequences that were already running + prefill of new ones.
      let decodeSeqs = 0, ctx = 0, prefill = 0, squares = 0;
      const nFresh = fresh.length;
      for (let k = 0; k < runCount - nFresh; k++) {
        const i = running[k]!;
        decodeSeqs++;
        ctx += P[i]! + gen[i]!;
      }
      for (const i of fresh) {
        const len = P[i]! + gen[i]!;
        prefill += len;
        squares += len * len;
      }
      const dt = cost.iterationTime({ decodeSeqs, decodeContext: ctx, prefillTokens: prefill, prefillSquares: squares });
      t += dt;

      // 4. Every running sequence emits a token; finished ones free their memory after the iteration.
      let used = 0, over = 0;
      const reserved = capacity - pool.free;
      w = 0;
      for (let k = 0; k < runCount; k++) {
        const i = running[k]!;
        const g = ++gen[i]!;
        generatedTokens++;
        if (firstTok[i]! < 0) firstTok[i] = t;
        used += P[i]! + g;
        if (P[i]! + g > alloc[i]!) over++;
        if (g === O[i]!) {
          finish[i] = t;
          finished++;
          pool.free += alloc[i]!;
          alloc[i] = 0;
          admitDirty = true;
        } else {
          running[w++] = i;
        }
      }
      batchSum += runCount;
      if (runCount > maxBatchSeen) maxBatchSeen = runCount;
      record(dt, used, reserved, runCount, over);
      runCount = w;
    }
  }

  // Metrics.
  const latency = new Float64Array(n);
  const ttft = new Float64Array(n);
  let outTok = 0, latSum = 0, end = 0;
  for (let i = 0; i < n; i++) {
    latency[i] = finish[i]! - A[i]!;
    ttft[i] = firstTok[i]! - A[i]!;
    latSum += latency[i]!;
    outTok += O[i]!;
    if (finish[i]! > end) end = finish[i]!;
  }
  const makespan = end - A[0]!;
  const sortedLat = latency.slice().sort();
  const sortedTtft = ttft.slice().sort();
  const metrics: PolicyMetrics = {
    requests: n,
    output_tokens: outTok,
    makespan_s: makespan,
    throughput_tokens_per_s: outTok / makespan,
    throughput_requests_per_s: n / makespan,
    latency_mean_s: latSum / n,
    latency_p50_s: percentile(sortedLat, 0.5),
    latency_p99_s: percentile(sortedLat, 0.99),
    ttft_p50_s: percentile(sortedTtft, 0.5),
    ttft_p99_s: percentile(sortedTtft, 0.99),
    iterations,
    mean_batch_size: batchSum / iterations,
    max_batch_size: maxBatchSeen,
    memory_utilization: usedArea / (makespan * cap),
    memory_reserved_fraction: reservedArea / (makespan * cap),
    peak_memory_reserved_fraction: peakReserved / cap,
    preemptions,
    recomputed_tokens: recomputed,
    prefill_tokens: prefillTokens,
    generated_tokens: generatedTokens,
    padding_tokens: paddingTokens,
    wasted_work_fraction: recomputed / (prefillTokens + generatedTokens),
  };
  return {
    name, metrics, latency,
    timeline: tl && { t: tl.t.values(), used: tl.used.values(), reserved: tl.reserved.values() },
  };
}

/** Nearest-rank percentile of an ascending array (q in [0, 1]). */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}
