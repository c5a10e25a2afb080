/**
 * Inputs of the simulator: a request trace (prompt and true output lengths from a prepared split), the
 * bucket scheme beside it, per-request predictions (from a predictions JSONL or a synthetic predictor) and
 * arrival times. Everything is validated with errors that name file, record and field. The files are read
 * by their owners: data/prepared-dir.ts (splits, scheme) and data/predictions-file.ts (predictions).
 */
import { basename } from "node:path";
import type { SplitLengths } from "../data/prepared-dir.js";
import { bucketOf, type BucketScheme } from "../data/buckets.js";
import { readPredictionsFile } from "../data/predictions-file.js";
import { LenpredError } from "../util/errors.js";
import { createRng, type Rng } from "../util/rng.js";

/** Requests as parallel arrays (52k requests × 6 policies must stay fast). */
export interface Trace {
  n: number;
  prompt: Int32Array;
  /** True output tokens (≥ 1: a generation emits at least its end-of-sequence token). */
  output: Int32Array;
  /** Arrival time in seconds, non-decreasing in request order. */
  arrival: Float64Array;
  /** Requests whose prompt + output was cut to the model's max sequence length. */
  truncated: number;
  /** Where it came from, for the report. */
  source: string;
}

export interface Predictions {
  /** Predicted bucket per request. */
  bucket: Int32Array;
  /** Predicted point estimate in tokens (orders shortest-predicted-first). */
  expected: Float64Array;
  /**
   * Tokens to reserve for the output, when the predictions carry `reserveTokens` (calibrated quantiles from
   * `lenpred replay` / online learning): S³ reserves prompt + this instead of the bucket's upper edge.
   */
  reserve?: Float64Array;
  source: string;
}

/**
 * Fit requests to the model: prompt + output ≤ maxSeqLen (output cut first, prompt kept ≥ 1 token of room
 * for output), output ≥ 1. Returns the trace with all arrivals at 0 (see `poissonArrivals`).
 */
export function buildTrace(raw: SplitLengths, maxSeqLen: number): Trace {
  const n = raw.prompt.length;
  const prompt = new Int32Array(n);
  const output = new Int32Array(n);
  let truncated = 0;
  for (let i = 0; i < n; i++) {
    let p = raw.prompt[i]!;
    let o = Math.max(1, raw.output[i]!);
    if (p + o > maxSeqLen) {
      truncated++;
      if (p > maxSeqLen - 1) p = maxSeqLen - 1;
      o = Math.min(o, maxSeqLen - p);
    }
    prompt[i] = p;
    output[i] = o;
  }
  return { n, prompt, output, arrival: new Float64Array(n), truncated, source: raw.files.map((f) => basename(f)).join("+") };
}

/** Poisson arrivals at `rate` requests/s, in trace order (exponential gaps from a seeded RNG). */
export function poissonArrivals(n: number, rate: number, seed: number): Float64Array {
  if (!(rate > 0 && Number.isFinite(rate))) throw new LenpredError(`arrival rate must be a positive number, got ${rate}`, { field: "rate" });
  const rng = createRng(`arrivals:${seed}`);
  const a = new Float64Array(n);
  let t = 0;
  for (let i = 0; i < n; i++) {
    a[i] = t;
    t += -Math.log(1 - rng.next()) / rate;
  }
  return a;
}

/**
 * Read a predictions JSONL (data/predictions-file.ts) joined to the trace by `index`. upperBound must be the
 * scheme's edge of the bucket (S³ reserves by bucket); reserveTokens is all or none.
 */
export async function readPredictions(file: string, n: number, scheme: BucketScheme): Promise<Predictions> {
  const lines = await readPredictionsFile(file, scheme, n, { of: "the trace", edgeUpperBound: true, allOrNone: ["reserveTokens"] });
  const bucket = Int32Array.from(lines, (l) => l.bucket);
  const expected = Float64Array.from(lines, (l) => l.expectedTokens);
  const withReserve = lines[0]?.reserveTokens !== undefined;
  return { bucket, expected, ...(withReserve ? { reserve: Float64Array.from(lines, (l) => l.reserveTokens!) } : {}), source: basename(file) };
}

/**
 * Synthetic predictors that need no model: `oracle` (true bucket, true length), `constant[:<bucket>]`
 * (one bucket for all — by default the trace's most frequent true bucket, i.e. a majority-class predictor),
 * `noisy:<sigma>` (true length × exp(σ·z), z ~ N(0,1), then bucketed).
 */
export function syntheticPredictions(spec: string, trace: Trace, scheme: BucketScheme, seed: number): Predictions {
  const n = trace.n;
  const bucket = new Int32Array(n);
  const expected = new Float64Array(n);
  const [kind, arg] = spec.split(":", 2) as [string, string | undefined];
  if (kind === "oracle" && arg === undefined) {
    for (let i = 0; i < n; i++) { bucket[i] = bucketOf(scheme, trace.output[i]!); expected[i] = trace.output[i]!; }
  } else if (kind === "constant") {
    let b: number;
    if (arg === undefined) {
      const counts = new Array<number>(scheme.edges.length).fill(0);
      for (let i = 0; i < n; i++) counts[bucketOf(scheme, trace.output[i]!)]!++;
      b = counts.indexOf(Math.max(...counts));
    } else {
      b = Number(arg);
      if (!Number.isInteger(b) || b < 0 || b >= scheme.edges.length) throw new LenpredError(`constant bucket must be an integer in 0..${scheme.edges.length - 1}, got '${arg}'`, { field: "predictor" });
    }
    const mid = (b === 0 ? 0 : scheme.edges[b - 1]!) / 2 + scheme.edges[b]! / 2;
    bucket.fill(b);
    expected.fill(mid);
    spec = `constant:${b}`;
  } else if (kind === "noisy" && arg !== undefined) {
    const sigma = Number(arg);
    if (!(Number.isFinite(sigma) && sigma >= 0)) throw new LenpredError(`noisy sigma must be a non-negative number, got '${arg}'`, { field: "predictor" });
    const rng = createRng(`noisy:${sigma}:${seed}`);
    for (let i = 0; i < n; i++) {
      const est = trace.output[i]! * Math.exp(sigma * gaussian(rng));
      bucket[i] = bucketOf(scheme, Math.round(est));
      expected[i] = est;
    }
  } else {
    throw new LenpredError(`unknown predictor '${spec}' (use oracle, constant, constant:<bucket> or noisy:<sigma>)`, { field: "predictor" });
  }
  return { bucket, expected, source: spec };
}

/** Standard normal by Box–Muller. */
function gaussian(rng: Rng): number {
  const u = 1 - rng.next();
  const v = rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
