/**
 * `runSimulation`: load a trace and predictions, run the chosen policies on one GPU profile and return a
 * JSON-able report. The CLI (`src/commands/simulate.ts`) is a thin wrapper around this.
 */
import { bucketOf, type BucketScheme } from "../data/buckets.js";
import { readBucketScheme, readSplitLengths, resolveSplitFiles } from "../data/prepared-dir.js";
import { LenpredError } from "../util/errors.js";
import { ALL_POLICIES, type PolicyName } from "./policies.js";
import { simulatePolicy, type PolicyMetrics, type PolicyResult, type SimOptions } from "./scheduler-loop.js";
import { buildProfile, describeProfile, type ProfileOverrides, type SimProfile } from "./profile.js";
import {
  buildTrace, poissonArrivals, readPredictions, syntheticPredictions,
  type Predictions, type Trace,
} from "./trace.js";

export interface SimulateConfig {
  /** Prepared directory or a split JSONL (scheme.json beside it). */
  data: string;
  split: string;
  limit?: number;
  /** Predictions JSONL for the split; otherwise `predictor`. */
  predictions?: string;
  predictor?: string;
  model: string;
  gpu: string;
  overrides?: ProfileOverrides;
  /** Poisson arrival rate (requests/s); undefined = offline (all at t = 0). */
  rate?: number;
  seed: number;
  policies: PolicyName[];
  sim?: SimOptions;
  /** Called before each policy runs. */
  onPolicy?: (name: PolicyName, trace: Trace) => void;
}

export interface Inputs { trace: Trace; scheme: BucketScheme; predictions: Predictions; profile: SimProfile }

export async function loadInputs(c: SimulateConfig): Promise<Inputs> {
  const profile = buildProfile(c.model, c.gpu, c.overrides);
  const { files, schemeFile } = resolveSplitFiles(c.data, c.split);
  if (c.predictions && files.length > 1) throw new LenpredError("a predictions file belongs to one split; use --split train|val|test with --predictions", { field: "split" });
  if (c.predictions && c.limit !== undefined) throw new LenpredError("--limit cannot be combined with --predictions (the file covers the whole split)", { field: "limit" });
  const scheme = await readBucketScheme(schemeFile);
  const raw = await readSplitLengths(files, c.limit);
  const trace = buildTrace(raw, profile.model.maxSeqLen);
  if (c.rate !== undefined) trace.arrival = poissonArrivals(trace.n, c.rate, c.seed);
  const predictions = c.predictions
    ? await readPredictions(c.predictions, trace.n, scheme)
    : syntheticPredictions(c.predictor ?? "oracle", trace, scheme, c.seed);
  return { trace, scheme, predictions, profile };
}

export interface PolicyReport extends PolicyMetrics { wall_s: number }

export interface SimulationReport {
  trace: Record<string, unknown>;
  predictor: Record<string, unknown>;
  scheme: BucketScheme;
  profile: Record<string, unknown>;
  seed: number;
  policies: Partial<Record<PolicyName, PolicyReport>>;
  /** throughput_tokens_per_s / that of `max-length` (when it ran). */
  speedup_vs_max_length?: Partial<Record<PolicyName, number>>;
  wall_s: number;
}

export function runPolicies(inp: Inputs, c: Pick<SimulateConfig, "policies" | "sim" | "onPolicy" | "seed" | "rate">): { report: SimulationReport; results: PolicyResult[] } {
  for (const p of c.policies) if (!(ALL_POLICIES as readonly string[]).includes(p)) throw new LenpredError(`unknown policy '${p}' (known: ${ALL_POLICIES.join(", ")})`, { field: "policies" });
  const start = performance.now();
  const results: PolicyResult[] = [];
  const policies: SimulationReport["policies"] = {};
  for (const name of c.policies) {
    c.onPolicy?.(name, inp.trace);
    const t0 = performance.now();
    const r = simulatePolicy(name, inp.trace, inp.predictions, inp.scheme, inp.profile, c.sim);
    policies[name] = { ...r.metrics, wall_s: round((performance.now() - t0) / 1000, 3) };
    results.push(r);
  }
  const base = policies["max-length"]?.throughput_tokens_per_s;
  const report: SimulationReport = {
    trace: describeTrace(inp.trace, c.rate),
    predictor: describePredictions(inp.predictions, inp.trace, inp.scheme),
    scheme: inp.scheme,
    profile: describeProfile(inp.profile),
    seed: c.seed,
    policies,
    wall_s: round((performance.now() - start) / 1000, 3),
  };
  if (base) {
    report.speedup_vs_max_length = Object.fromEntries(
      Object.entries(policies).map(([k, v]) => [k, round(v!.throughput_tokens_per_s / base, 3)]));
  }
  return { report, results };
}

export async function runSimulation(c: SimulateConfig): Promise<{ report: SimulationReport; results: PolicyResult[]; inputs: Inputs }> {
  const inputs = await loadInputs(c);
  return { ...runPolicies(inputs, c), inputs };
}

function describeTrace(t: Trace, rate: number | undefined): Record<string, unknown> {
  let p = 0, o = 0;
  for (let i = 0; i < t.n; i++) { p += t.prompt[i]!; o += t.output[i]!; }
  return {
    source: t.source, requests: t.n, mean_prompt_tokens: round(p / t.n, 2), mean_output_tokens: round(o / t.n, 2),
    truncated_to_max_seq_len: t.truncated, arrivals: rate === undefined ? "offline" : { poisson_rate_per_s: rate },
  };
}

/** How good the predictions are, in the terms that matter here: exact bucket, and under-prediction (→ overflow). */
function describePredictions(pr: Predictions, t: Trace, s: BucketScheme): Record<string, unknown> {
  let exact = 0, under = 0;
  for (let i = 0; i < t.n; i++) {
    const b = bucketOf(s, t.output[i]!);
    if (pr.bucket[i] === b) exact++;
    else if (pr.bucket[i]! < b) under++;
  }
  const out: Record<string, unknown> = { source: pr.source, bucket_accuracy: round(exact / t.n, 4), under_predicted_fraction: round(under / t.n, 4) };
  if (pr.reserve) {
    let covered = 0;
    for (let i = 0; i < t.n; i++) if (t.output[i]! <= pr.reserve[i]!) covered++;
    out.reserve_tokens_coverage = round(covered / t.n, 4);
  }
  return out;
}

function round(x: number, d: number): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}
