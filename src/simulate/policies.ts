/**
 * Scheduling policies: each is a small object the loop (scheduler-loop.ts) asks three things — in which
 * order to serve the waiting queue, how much KV to reserve for a request, and what to do when a running
 * sequence outgrows its reservation — over one KV mechanism (kv-pool.ts: reservation or paged).
 *
 * - `max-length`: FasterTransformer-style static batches. Batch size = capacity / maxSeqLen; a batch runs
 *   until its longest member finishes, its memory stays reserved and results return when the batch ends.
 * - `max-length-iter`: the same reservation with iteration-level (ORCA-style) admission, for comparison.
 * - `s3`: reserve prompt + the predicted bucket's upper edge (the whole max length for the last, open-ended
 *   bucket), admit first-fit in queue order to fill memory; the supervisor preempts a sequence that reaches
 *   its reservation, moves it to the next bucket and re-queues it at the front (its KV is recomputed).
 *   With calibrated `reserveTokens`: reserve prompt + reserveTokens, double the output part on outgrowing it.
 * - `oracle`: reserve exactly prompt + true output; never preempts.
 * - `paged`: vLLM-like blocks allocated on demand, head-of-line FCFS admission with a 1% watermark, and
 *   recompute preemption of the most recently admitted sequence when a block is missing.
 * - `s3-sjf`, `paged-sjf`: the same with the waiting queue ordered shortest-predicted-first.
 *
 * A NEW POLICY goes here: add its name to ALL_POLICIES (and DEFAULT_POLICIES if every run should show it)
 * and a factory to POLICIES. The loop needs no change unless the policy needs a new KV mechanism.
 */
import type { BucketScheme } from "../data/buckets.js";
import type { Predictions, Trace } from "./trace.js";

export const DEFAULT_POLICIES = ["max-length", "s3", "oracle", "paged", "s3-sjf", "paged-sjf"] as const;
export const ALL_POLICIES = [...DEFAULT_POLICIES, "max-length-iter"] as const;
export type PolicyName = (typeof ALL_POLICIES)[number];

export interface PolicyContext {
  trace: Trace;
  pred: Predictions;
  scheme: BucketScheme;
  /** The model's max sequence length (prompt + output). */
  maxLen: number;
}

export interface SchedulingPolicy {
  /**
   * KV mechanism: `static-batch` (whole batches reserve maxLen and finish together), `reservation`
   * (exact per-request reservations, first-fit admission) or `paged` (blocks on demand, head-of-line admission).
   */
  readonly pool: "static-batch" | "reservation" | "paged";
  /** Waiting-queue order: arrival order, or shortest predicted output first (`pred.expected`). */
  readonly order: "fcfs" | "shortest-predicted";
  /** Reservation pools: prompt + output tokens to reserve for request i at its (re-)admission. */
  reserve(i: number): number;
  /**
   * Reservation pools: request i needs `need` tokens but its reservation is smaller. Update what `reserve(i)`
   * returns next; the loop then preempts i (its KV is freed and recomputed at re-admission).
   */
  onOutgrow(i: number, need: number): void;
}

export type PolicyFactory = (ctx: PolicyContext) => SchedulingPolicy;

/** Reserve the whole max sequence length (never outgrown). */
const maxLength = (pool: "static-batch" | "reservation"): PolicyFactory => ({ maxLen }) => ({
  pool, order: "fcfs", reserve: () => maxLen, onOutgrow: () => {},
});

/** Exact prompt + true output (never outgrown). */
const oracle: PolicyFactory = ({ trace }) => ({
  pool: "reservation", order: "fcfs", reserve: (i) => trace.prompt[i]! + trace.output[i]!, onOutgrow: () => {},
});

/** Blocks on demand: nothing is reserved ahead, so there is nothing to outgrow. */
const paged = (order: SchedulingPolicy["order"]): PolicyFactory => () => ({
  pool: "paged", order, reserve: () => 0, onOutgrow: () => {},
});

/**
 * S³: reserve prompt + the predicted bucket's upper edge; the supervisor moves a sequence that outgrew it to
 * the next bucket that fits (S³'s own rule, kept for bucket-only predictions).
 *
 * With calibrated reservations (`reserveTokens`, the q-quantile from online learning) S³ reserves prompt +
 * reserveTokens, and a sequence that outgrows it doubles its output reservation (at least what it needs now,
 * at most the max sequence length). Such a sequence is in the predictor's upper tail, where the ranking says
 * little; geometric growth bounds its preemptions by ⌈log2(output / reserveTokens)⌉ and the output tokens it
 * recomputes by twice its final length (plus the prompt per preemption), with no parameter to tune. Growing
 * bucket by bucket instead cost S³ 5–10 % of the oracle's throughput on replayed streams (docs/online.md).
 */
const s3 = (order: SchedulingPolicy["order"]): PolicyFactory => ({ trace, pred, scheme, maxLen }) => {
  const P = trace.prompt;
  const edges = scheme.edges;
  const lastBucket = edges.length - 1;
  const bucket = Int32Array.from(pred.bucket);
  if (pred.reserve) {
    // Output tokens to reserve: the calibrated quantile, at least one token.
    const out = Float64Array.from(pred.reserve, (r) => Math.max(1, Math.ceil(r)));
    return {
      pool: "reservation",
      order,
      reserve: (i) => Math.min(maxLen, P[i]! + out[i]!),
      onOutgrow(i, need) { out[i] = Math.max(need - P[i]!, 2 * out[i]!); },
    };
  }
  return {
    pool: "reservation",
    order,
    // The last bucket is open-ended, so it reserves the max.
    reserve: (i) => (bucket[i] === lastBucket ? maxLen : Math.min(maxLen, P[i]! + edges[bucket[i]!]!)),
    onOutgrow(i, need) {
      // Misprediction: the sequence outgrew its bucket. Move it to the next bucket that fits.
      while (bucket[i]! < lastBucket && Math.min(maxLen, P[i]! + edges[bucket[i]!]!) < need) bucket[i]!++;
    },
  };
};

export const POLICIES: Record<PolicyName, PolicyFactory> = {
  "max-length": maxLength("static-batch"),
  "max-length-iter": maxLength("reservation"),
  s3: s3("fcfs"),
  "s3-sjf": s3("shortest-predicted"),
  oracle,
  paged: paged("fcfs"),
  "paged-sjf": paged("shortest-predicted"),
};
