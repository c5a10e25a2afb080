/**
 * Inputs of the simulator: a request trace (prompt and true output lengths from a prepared split), the
 * bucket scheme beside it, per-request predictions (from a predictions JSONL or a synthetic predictor) and
 * arrival times. Everything is validated with errors that name file, record and field.
 */
import { existsSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { bucketOf, validateScheme, type BucketScheme } from "../data/buckets.js";
import { SPLITS } from "../data/records.js";
import { LenpredError } from "../util/errors.js";
import { asObject, describe, getNonNegInt } from "../util/fields.js";
import { readJsonl } from "../util/jsonl.js";
import { createRng, type Rng } from "../util/rng.js";
import { readJsonFile } from "../util/json-file.js";

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

export interface RawTrace { prompt: number[]; output: number[]; files: string[] }

/** Resolve `--data` (a prepared dir or a split JSONL) into split files and the scheme file. */
export function resolveTraceFiles(data: string, split: string): { files: string[]; schemeFile: string } {
  if (!existsSync(data)) throw new LenpredError("not found", { file: data });
  if (statSync(data).isDirectory()) {
    if (split === "all") {
      // `prepare` writes no test split by default, so "all" means every split that exists.
      const files = SPLITS.map((s) => join(data, `${s}.jsonl`)).filter((f) => existsSync(f));
      if (files.length === 0) throw new LenpredError(`no ${SPLITS.join("/")}.jsonl here (is this a 'lenpred prepare' output dir?)`, { file: data });
      return { files, schemeFile: join(data, "scheme.json") };
    }
    const file = join(data, `${split}.jsonl`);
    if (!existsSync(file)) {
      const have = SPLITS.filter((s) => existsSync(join(data, `${s}.jsonl`)));
      throw new LenpredError(`split file not found (splits here: ${have.join(", ") || "none"}; 'lenpred prepare --test-fraction 0.1' makes a test split)`, { file, field: "split" });
    }
    return { files: [file], schemeFile: join(data, "scheme.json") };
  }
  if (split === "all") throw new LenpredError("--split all needs --data to be a prepared directory", { file: data });
  return { files: [data], schemeFile: join(dirname(data), "scheme.json") };
}

export async function readScheme(file: string): Promise<BucketScheme> {
  const unreadable = (code: string | undefined) => `cannot read bucket scheme (${code}); it must sit beside the split as scheme.json`;
  const v = await readJsonFile(file, { missing: unreadable("ENOENT"), unreadable });
  return validateScheme(asObject(v, { file }).buckets, file);
}

/** Read prompt/output token counts of PreparedRecords (prompts themselves are not needed). */
export async function readSplits(files: string[], limit = Infinity): Promise<RawTrace> {
  const prompt: number[] = [];
  const output: number[] = [];
  outer: for (const file of files) {
    for await (const r of readJsonl(file)) {
      if (prompt.length >= limit) break outer;
      const place = { file, record: r.index };
      const o = asObject(r.value, place);
      prompt.push(getNonNegInt(o, "prompt_tokens", place)!);
      output.push(getNonNegInt(o, "output_tokens", place)!);
    }
  }
  if (prompt.length === 0) throw new LenpredError("the trace has no records", { file: files.join(", ") });
  return { prompt, output, files };
}

/**
 * Fit requests to the model: prompt + output ≤ maxSeqLen (output cut first, prompt kept ≥ 1 token of room
 * for output), output ≥ 1. Returns the trace with all arrivals at 0 (see `poissonArrivals`).
 */
export function buildTrace(raw: RawTrace, maxSeqLen: number): Trace {
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

/** Read and validate a predictions JSONL (PredictionRecord per line) joined to the trace by `index`. */
export async function readPredictions(file: string, n: number, scheme: BucketScheme): Promise<Predictions> {
  const bucket = new Int32Array(n).fill(-1);
  const expected = new Float64Array(n);
  const seenAt = new Int32Array(n).fill(-1);
  const reserve = new Float64Array(n);
  let withReserve = 0;
  const nb = scheme.edges.length;
  for await (const r of readJsonl(file)) {
    const place = { file, record: r.index };
    const o = asObject(r.value, place);
    const index = getNonNegInt(o, "index", place)!;
    if (index >= n) throw new LenpredError(`index ${index} is out of range: the trace has ${n} records (0..${n - 1})`, { ...place, field: "index" });
    if (seenAt[index]! >= 0) throw new LenpredError(`duplicate index ${index} (first seen at record ${seenAt[index]})`, { ...place, field: "index" });
    seenAt[index] = r.index;
    const b = getNonNegInt(o, "bucket", place)!;
    if (b >= nb) throw new LenpredError(`bucket ${b} out of range 0..${nb - 1} of the trace's scheme`, { ...place, field: "bucket" });
    const ub = o.upperBound;
    if (typeof ub !== "number" || ub !== scheme.edges[b]) {
      throw new LenpredError(`expected ${scheme.edges[b]} (the scheme's upper edge of bucket ${b}), got ${describe(ub)}; were the predictions made with another bucket scheme?`, { ...place, field: "upperBound" });
    }
    const ex = o.expectedTokens;
    if (typeof ex !== "number" || !Number.isFinite(ex) || ex < 0) throw new LenpredError(`expected a non-negative number, got ${describe(ex)}`, { ...place, field: "expectedTokens" });
    bucket[index] = b;
    expected[index] = ex;
    const rt = o.reserveTokens;
    if (rt !== undefined) {
      if (typeof rt !== "number" || !Number.isFinite(rt) || rt < 0) throw new LenpredError(`expected a non-negative number, got ${describe(rt)}`, { ...place, field: "reserveTokens" });
      reserve[index] = rt;
      withReserve++;
    } else if (withReserve > 0) {
      throw new LenpredError("reserveTokens is missing here but present on earlier records (all or none)", { ...place, field: "reserveTokens" });
    }
  }
  if (withReserve > 0 && withReserve < n) throw new LenpredError(`only ${withReserve} of ${n} predictions carry reserveTokens (all or none)`, { file, field: "reserveTokens" });
  let missing = 0;
  let first = -1;
  for (let i = 0; i < n; i++) if (bucket[i]! < 0) { missing++; if (first < 0) first = i; }
  if (missing > 0) throw new LenpredError(`no prediction for index ${first} (${missing} of ${n} trace records have none)`, { file, field: "index" });
  return { bucket, expected, ...(withReserve > 0 ? { reserve } : {}), source: basename(file) };
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
