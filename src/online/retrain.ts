/**
 * Background retraining of the DistilBERT member for one target, on that target's stored observations:
 *
 *  1. the most recent `holdout` observations are held out; the rest (≤ `maxSamples`, newest) become a prepared
 *     train/val split in a scratch dir of the state dir;
 *  2. a child process runs `lenpred train --init <current member> --head <its head>` (lowest CPU priority, 1
 *     thread), so predictions never wait for it; given a `YieldGate`, the child is stopped outright while
 *     predictions are in flight (it would still slow them through the shared caches);
 *  3. candidate and current member are each calibrated (median log offset on the newest training samples) and
 *     scored on the held-out observations; the candidate is swapped in only if its MAE is lower by `margin`.
 */
import { spawn } from "node:child_process";
import { setPriority } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { rm } from "node:fs/promises";
import { bucketOf, type BucketScheme } from "../data/buckets.js";
import type { Predictor } from "../model/prediction.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { readModelMeta } from "../model-dir/index.js";
import { repoRoot } from "../util/paths.js";
import type { YieldGate } from "../util/yield-gate.js";
import { backgroundCommand } from "../util/background-process.js";

export interface RetrainConfig {
  /** Observations of a target between automatic retrains (0 = only on request). */
  every: number;
  epochs: number;
  lr: number;
  /** Most recent observations held out for the swap decision. */
  holdout: number;
  /** Fewest stored observations of the target to retrain at all. */
  minSamples: number;
  maxSamples: number;
  threads: number;
  /** Relative MAE improvement the candidate needs to be swapped in. */
  margin: number;
  timeoutMs: number;
}

export const DEFAULT_RETRAIN: RetrainConfig = { every: 1000, epochs: 3, lr: 1e-4, holdout: 200, minSamples: 300, maxSamples: 5000, threads: 1, margin: 0.01, timeoutMs: 10 * 60_000 };

export interface RetrainResult {
  model: string;
  /** ISO time the retrain finished. */
  at: string;
  samples: number;
  heldOut: number;
  currentMae?: number;
  candidateMae?: number;
  accepted: boolean;
  /** Why it was not tried or not accepted, when it was not. */
  reason?: string;
  seconds: number;
}

export interface Sample { prompt: string; output_tokens: number; prompt_tokens?: number }

/** A loaded DistilBERT member; `dispose` frees it (after its in-flight batches). */
export type LoadedMember = Predictor & { dispose(): Promise<void> };
/** Loads a member directory where predictions run (in this thread, or `lenpred serve`'s predictor worker). */
export type MemberLoader = (dir: string) => Promise<LoadedMember>;

export async function loadMemberInProcess(dir: string): Promise<LoadedMember> {
  const { DistilBertPredictor } = await import("../predictor/distilbert-predictor.js");
  return DistilBertPredictor.load(dir, { threads: 1 });
}

/** Train a candidate in `work` from `initDir`; returns its directory and the scores (the caller swaps). */
export async function retrainCandidate(p: {
  model: string; samples: Sample[]; initDir: string; current: Predictor; buckets: BucketScheme; work: string; cfg: RetrainConfig;
  /** Where the candidate is loaded and run (default: in this thread). */
  loadMember?: MemberLoader;
  /** Foreground work the training child yields to (stopped while it is in flight). */
  gate?: YieldGate;
  /** Aborting kills the training child (e.g. the server is shutting down). */
  signal?: AbortSignal;
}): Promise<{ result: RetrainResult; candidateDir?: string; candidate?: LoadedMember; meanShift?: number }> {
  const t0 = Date.now();
  const { cfg } = p;
  const samples = p.samples.slice(-cfg.maxSamples);
  const done = (r: Partial<RetrainResult>) => ({ model: p.model, at: new Date().toISOString(), samples: samples.length, heldOut: 0, accepted: false, seconds: (Date.now() - t0) / 1000, ...r });
  if (samples.length < cfg.minSamples) return { result: done({ reason: `${samples.length} stored observations, fewer than ${cfg.minSamples}` }) };
  const nHeld = Math.min(cfg.holdout, Math.floor(samples.length / 5));
  const held = samples.slice(samples.length - nHeld);
  const rest = samples.slice(0, samples.length - nHeld);
  const nVal = Math.max(1, Math.floor(rest.length / 10));
  const data = join(p.work, "data");
  const rec = (s: Sample, i: number) => JSON.stringify({ id: i, prompt: s.prompt, prompt_tokens: s.prompt_tokens ?? 0, output_tokens: s.output_tokens, output_length_bucket: bucketOf(p.buckets, s.output_tokens) }) + "\n";
  const initMeta = await readModelMeta(p.initDir);
  await writeFileAtomic(join(data, "train.jsonl"), rest.slice(0, rest.length - nVal).map(rec).join(""));
  await writeFileAtomic(join(data, "val.jsonl"), rest.slice(rest.length - nVal).map(rec).join(""));
  await writeJsonAtomic(join(data, "scheme.json"), { buckets: p.buckets, tokenizer: initMeta.tokenizer, specialTokens: false, label: "online:output_tokens", template: "" });
  const out = join(p.work, "model");
  const head = typeof initMeta.head === "string" ? initMeta.head : "regression";
  const err = await runTrain(["train", "--data", data, "--out", out, "--init", p.initDir, "--head", head, "--epochs", String(cfg.epochs), "--lr", String(cfg.lr),
    "--threads", String(cfg.threads), "--monitor", "mae", "--overwrite", "--no-progress"], cfg.timeoutMs, p.gate, p.signal);
  if (err) return { result: done({ heldOut: nHeld, reason: `training failed: ${err}` }) };
  const candidate = await (p.loadMember ?? loadMemberInProcess)(out);
  const calib = rest.slice(-300);
  const [cur, cand] = await Promise.all([heldOutMae(p.current, calib, held), heldOutMae(candidate, calib, held)]);
  const currentMae = cur.mae, candidateMae = cand.mae;
  const accepted = candidateMae < currentMae * (1 - cfg.margin);
  // Mean change of the member's log estimate on recent prompts: the caller shifts its calibration by it.
  const meanShift = cand.x.reduce((s, x, i) => s + x - cur.x[i]!, 0) / Math.max(1, cand.x.length);
  if (!accepted) await candidate.dispose();
  return {
    result: done({ heldOut: nHeld, currentMae, candidateMae, accepted, ...(accepted ? {} : { reason: "not better on the held-out observations" }) }),
    ...(accepted ? { candidateDir: out, candidate, meanShift } : {}),
  };
}

/** MAE in tokens on `held` after a median log-offset calibration fitted on `calib` (both members get the same). */
async function heldOutMae(m: Predictor, calib: Sample[], held: Sample[]): Promise<{ mae: number; x: number[] }> {
  const preds = await m.predictBatch([...calib, ...held].map((s) => s.prompt));
  const x = preds.map((p) => Math.log1p(Math.max(0, p.expectedTokens)));
  const r = calib.map((s, i) => Math.log1p(s.output_tokens) - x[i]!).sort((a, b) => a - b);
  const off = r.length ? r[r.length >> 1]! : 0;
  let ae = 0;
  held.forEach((s, j) => { ae += Math.abs(Math.expm1(x[calib.length + j]! + off) - s.output_tokens); });
  return { mae: ae / held.length, x };
}

/**
 * Run `lenpred train` in a child process at low priority; resolves with an error message or undefined.
 * `timeoutMs` counts the time the child could run: time it spent stopped by `gate` does not count.
 */
function runTrain(args: string[], timeoutMs: number, gate?: YieldGate, signal?: AbortSignal): Promise<string | undefined> {
  const here = fileURLToPath(import.meta.url);
  const ts = here.endsWith(".ts");
  const cli = join(dirname(here), "..", ts ? "cli.ts" : "cli.js");
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve("aborted");
    const { argv, diesWithParent } = backgroundCommand([process.execPath, ...(ts ? ["--import", "tsx"] : []), cli, ...args]);
    const child = spawn(argv[0]!, argv.slice(1), { cwd: repoRoot, stdio: ["ignore", "ignore", "pipe"] });
    try { if (child.pid) setPriority(child.pid, 19); } catch { /* not permitted: run at normal priority */ }
    // A stopped child could outlive a crashed parent: only stop it where the kernel kills it with the parent.
    const detach = child.pid !== undefined && gate && diesWithParent ? gate.attach(child.pid) : undefined;
    const pausedAtStart = gate?.stats().pausedMs ?? 0;
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000); });
    let reason: string | undefined;
    const stop = (why: string) => { reason ??= why; detach?.({ resume: true }); child.kill("SIGKILL"); };
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number) => {
      timer = setTimeout(() => {
        const ran = performance.now() - started - ((gate?.stats().pausedMs ?? 0) - pausedAtStart);
        if (ran >= timeoutMs) stop(`timed out after ${Math.round(timeoutMs / 1000)} s of running time`);
        else arm(timeoutMs - ran);
      }, ms);
      timer.unref();
    };
    arm(timeoutMs);
    const onAbort = () => stop("aborted");
    signal?.addEventListener("abort", onAbort, { once: true });
    const finish = (message: string | undefined) => {
      clearTimeout(timer);
      detach?.();
      signal?.removeEventListener("abort", onAbort);
      resolve(message);
    };
    child.on("error", (e) => finish(e.message));
    child.on("exit", (code, sig) => finish(code === 0 ? undefined : reason ?? (stderr.trim().split("\n").pop() || `exit ${code ?? sig}`)));
  });
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
