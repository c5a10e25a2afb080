/**
 * S³ pipeline step 1 as a library function: read examples (streaming), count prompt and output tokens, split
 * with a seed, bucket, and write `<out>/{train,val[,test]}.jsonl`, `scheme.json`, `stats.json` — all into a
 * temporary directory that replaces `<out>` only when everything succeeded.
 *
 * Two passes keep memory bounded for any input size: pass 1 streams the input once, tokenizes, and spools
 * compact records to a scratch file while keeping only the output lengths (4–8 bytes per record) in memory;
 * then the split and (for percentile buckets) the training-split edges are computed; pass 2 streams the
 * scratch file into the split files.
 */
import { existsSync } from "node:fs";
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { openAtomicWriteStream, replaceDirAtomic, writeJsonAtomic, type AtomicWriteStream } from "../util/atomic.js";
import { LenpredError } from "../util/errors.js";
import { readError, readJsonl, toJsonlLine } from "../util/jsonl.js";
import { loadTokenizer } from "../tokenizers/index.js";
import { bucketOf, logBuckets, percentileBuckets, uniformBuckets, validateScheme, type BucketKind, type BucketScheme } from "./buckets.js";
import { labelName, loadLengths, parseLengthLabel, type LengthTable } from "./lengths.js";
import type { PreparedRecord, PreparedScheme, SplitName } from "./records.js";
import { DEFAULT_TEMPLATE, readExamples, type ExampleStats, type InputFormat, type ReadProgress } from "./sources.js";
import { CountPool } from "./count-pool.js";
import { DuplicateIndex, type DuplicateReport } from "./duplicates.js";
import { assignSplits, SPLIT_CODES } from "./split.js";
import { argmax, constantAccuracy, histogram, summarize, type LengthSummary } from "./stats.js";

export interface BucketOptions {
  kind: BucketKind;
  maxLength: number;
  count: number;
}

export interface PrepareOptions {
  input: string;
  out: string;
  format?: InputFormat;
  template?: string;
  tokenizer?: string;
  /** Count special tokens ([CLS]/[SEP]) as the reference `encode` does. Default true. */
  specialTokens?: boolean;
  /** Vicuna length file to join by id; only joined records are kept. */
  lengths?: string;
  /** Label from the length file: max (default), mean, L_gt, L_t0.3, … */
  label?: string;
  buckets?: BucketOptions;
  /** Reuse a saved scheme (scheme.json of prepared data or a model) instead of `buckets`. */
  schemeFile?: BucketScheme;
  valFraction?: number;
  testFraction?: number;
  seed?: number;
  /**
   * Worker threads for token counting (0 or 1 = count on the calling thread, the default for library use;
   * the CLI defaults to the number of cores). Output is identical either way.
   */
  threads?: number;
  /** Called with (bytesRead, totalBytes) during pass 1. */
  onProgress?: (bytes: number, total: number) => void;
  /** Longest input record (JSONL line / array element) accepted; default DEFAULT_MAX_RECORD_BYTES (8 MiB). */
  maxRecordBytes?: number;
  /** Replace `out` even if it is not a lenpred prepare output directory (a file, or a foreign directory). */
  force?: boolean;
}

export interface PrepareStats {
  input: string;
  format: string;
  tokenizer: string;
  specialTokens: boolean;
  label: string;
  template: string;
  seed: number;
  fractions: { val: number; test: number };
  counts: {
    records: number; examples: number; train: number; val: number; test?: number; recordsWithoutPairs?: number; lengthRowsUnmatched?: number; examplesWithoutLength?: number;
    /** Examples whose prompt / prompt and answer repeat an earlier example; examples moved to their prompt's split. */
    duplicatePrompts?: number; duplicateExamples?: number; movedForDuplicates?: number;
  };
  /** The first repeated prompt: its id and the id of the earlier example it repeats (when there are duplicates). */
  firstDuplicate?: { id: string | number; of: string | number };
  buckets: BucketScheme;
  /** Per split; `test` only when there is a test split. */
  outputTokens: { all: LengthSummary | null; train: LengthSummary | null; val: LengthSummary | null; test?: LengthSummary | null };
  promptTokens: Record<"all", LengthSummary | null>;
  histogram: { all: number[]; train: number[]; val: number[]; test?: number[] };
  majority: { bucket: number; accuracy: number; trainBucket: number; valAccuracy: number | null; testAccuracy?: number | null };
  seconds: number;
}

/** Examples per counting batch: large enough to amortize worker messages, small enough to keep memory flat. */
const BATCH = 256;

const DEFAULT_BUCKETS: BucketOptions = { kind: "uniform", maxLength: 1024, count: 8 };

function makeScheme(b: BucketOptions, trainLengths: () => ArrayLike<number>): BucketScheme {
  if (b.kind === "uniform") return uniformBuckets(b.maxLength, b.count);
  if (b.kind === "log") return logBuckets(b.maxLength, b.count);
  return percentileBuckets(trainLengths(), b.count, b.maxLength);
}

export async function prepareDataset(opts: PrepareOptions): Promise<{ stats: PrepareStats; scheme: PreparedScheme }> {
  const t0 = performance.now();
  const specialTokens = opts.specialTokens ?? true;
  const seed = opts.seed ?? 42;
  const fractions = { val: opts.valFraction ?? 0.1, test: opts.testFraction ?? 0 };
  const template = opts.template ?? DEFAULT_TEMPLATE;
  const bucketOpts = opts.buckets ?? DEFAULT_BUCKETS;
  // Everything that can fail on arguments fails before any output exists.
  const tokenizer = await loadTokenizer(opts.tokenizer ?? "bert-base-uncased");
  const label = opts.lengths ? parseLengthLabel(opts.label ?? "max") : undefined;
  if (!opts.lengths && opts.label) throw new LenpredError("--label needs --lengths (a length file to take the label from)", { field: "--label" });
  const lengths: LengthTable | undefined = opts.lengths && label ? await loadLengths(opts.lengths, label) : undefined;
  const inputStat = await stat(opts.input).catch((e: unknown) => { throw readError(e, opts.input); });
  // A directory is accepted only as an online-learning state dir (its observation segments, see sources.ts).
  if (inputStat.isDirectory() && !existsSync(join(opts.input, "observations"))) throw new LenpredError("is a directory, expected a file", { file: opts.input });
  const totalBytes = inputStat.size;
  await checkOutTarget(opts.out, opts.force ?? false);

  const threads = opts.threads && opts.threads > 1 ? Math.floor(opts.threads) : 0;

  let stats!: PrepareStats;
  let prepared!: PreparedScheme;
  await replaceDirAtomic(opts.out, async (tmp) => {
    // ---- pass 1: read, tokenize, spool ----
    const scratchPath = join(tmp, ".examples.jsonl");
    const scratch = await openAtomicWriteStream(scratchPath);
    const pool = threads ? await CountPool.create(opts.tokenizer ?? "bert-base-uncased", threads) : undefined;
    const outLens: number[] = [];
    const promptLens: number[] = [];
    const exStats: Partial<ExampleStats> = {};
    const progress: ReadProgress = { bytesRead: 0 };
    const seenIds = lengths ? new Set<string>() : undefined;
    const dups = new DuplicateIndex();
    let examplesWithoutLength = 0;
    let lastReport = 0;
    const countOpts = { addSpecialTokens: specialTokens };
    // Examples are counted in batches (on worker threads when there is a pool) and spooled in input order.
    type Item = { id: string | number; prompt: string; output: string | null; y?: number };
    const emit = async (it: Item, p: number, y: number) => {
      outLens.push(y);
      promptLens.push(p);
      dups.add(it.prompt, it.output ?? y);
      await scratch.write(JSON.stringify([it.id, it.prompt, p, y]) + "\n");
    };
    const inFlight: Array<{ items: Item[]; result: ReturnType<CountPool["count"]> }> = [];
    const drainOne = async () => {
      const { items, result } = inFlight.shift()!;
      const r = await result;
      for (let i = 0; i < items.length; i++) await emit(items[i]!, r.prompts[i]!, items[i]!.y ?? r.outputs[i]!);
    };
    let batch: Item[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const items = batch;
      batch = [];
      if (!pool) {
        for (const it of items) await emit(it, tokenizer.count(it.prompt, countOpts), it.y ?? tokenizer.count(it.output!, countOpts));
        return;
      }
      inFlight.push({ items, result: pool.count(items.map((i) => i.prompt), items.map((i) => (i.y === undefined ? i.output : null)), specialTokens) });
      while (inFlight.length > 2 * threads) await drainOne();
    };
    try {
      for await (const ex of readExamples(opts.input, { format: opts.format, template, progress, stats: exStats, maxRecordBytes: opts.maxRecordBytes })) {
        let y = ex.outputTokens;
        if (lengths) {
          const key = String(ex.id);
          y = lengths.byId.get(key);
          if (y === undefined) { examplesWithoutLength++; continue; }
          seenIds!.add(key);
        }
        batch.push({ id: ex.id, prompt: ex.prompt, output: ex.output ?? null, y });
        if (batch.length >= BATCH) await flush();
        if (opts.onProgress && outLens.length - lastReport >= 1000) {
          lastReport = outLens.length;
          opts.onProgress(progress.bytesRead, totalBytes);
        }
      }
      await flush();
      while (inFlight.length) await drainOne();
      await scratch.commit();
    } catch (e) {
      await scratch.abort();
      throw e;
    } finally {
      // Rejections of batches we no longer wait for must not surface as unhandled.
      for (const f of inFlight) f.result.catch(() => {});
      await pool?.close();
    }
    opts.onProgress?.(totalBytes, totalBytes);
    const n = outLens.length;
    if (n === 0) {
      throw new LenpredError(lengths ? "no input record matched an id in the length file" : "no examples in the input", { file: opts.input });
    }

    // ---- split and scheme ----
    const codes = assignSplits(n, fractions, seed);
    const dupReport: DuplicateReport = dups.groupSplits(codes);
    const firstDup: { id?: string | number; of?: string | number } = {};
    const scheme = opts.schemeFile ?? makeScheme(bucketOpts, () => outLens.filter((_, i) => codes[i] === 0));
    const labelDesc = lengths
      ? `vicuna:${labelName(label!)}`
      : exStats.givenTokenCounts && exStats.countedFromText ? "log:output_tokens+output"
      : exStats.givenTokenCounts ? "log:output_tokens"
      : `${exStats.format}:output`;
    prepared = { buckets: scheme, tokenizer: tokenizer.name, specialTokens, label: labelDesc, template };

    // ---- pass 2: write the splits ----
    const splits: SplitName[] = fractions.test > 0 ? ["train", "val", "test"] : ["train", "val"];
    const writers = new Map<SplitName, AtomicWriteStream>();
    const buckets = new Uint8Array(n);
    try {
      for (const s of splits) writers.set(s, await openAtomicWriteStream(join(tmp, `${s}.jsonl`)));
      // The scratch file holds records we wrote ourselves: no size limit (a template may lengthen prompts).
      for await (const { index, value } of readJsonl(scratchPath, { maxRecordBytes: Infinity })) {
        const [id, prompt, p, y] = value as [string | number, string, number, number];
        if (index === dupReport.first?.index) firstDup.id = id;
        if (index === dupReport.first?.of) firstDup.of = id;
        const b = bucketOf(scheme, y);
        buckets[index] = b;
        const rec: PreparedRecord = { id, prompt, prompt_tokens: p, output_tokens: y, output_length_bucket: b };
        await writers.get(SPLIT_CODES[codes[index]!]!)!.write(toJsonlLine(rec));
      }
      for (const w of writers.values()) await w.commit();
    } catch (e) {
      for (const w of writers.values()) await w.abort();
      throw e;
    }
    await rm(scratchPath, { force: true });

    // ---- stats ----
    const pick = <T extends ArrayLike<number>>(xs: T, code: number) => Array.from(xs).filter((_, i) => codes[i] === code);
    const hasTest = fractions.test > 0;
    const hist = { all: histogram(buckets, scheme), train: histogram(pick(buckets, 0), scheme), val: histogram(pick(buckets, 1), scheme), test: histogram(pick(buckets, 2), scheme) };
    const majority = argmax(hist.all);
    const trainMajority = argmax(hist.train);
    stats = {
      input: opts.input,
      format: exStats.format ?? "unknown",
      tokenizer: tokenizer.name,
      specialTokens,
      label: labelDesc,
      template,
      seed,
      fractions,
      counts: {
        records: exStats.records ?? 0,
        examples: n,
        train: hist.train.reduce((a, b) => a + b, 0),
        val: hist.val.reduce((a, b) => a + b, 0),
        ...(hasTest ? { test: hist.test.reduce((a, b) => a + b, 0) } : {}),
        ...(exStats.recordsWithoutPairs ? { recordsWithoutPairs: exStats.recordsWithoutPairs } : {}),
        ...(lengths ? { lengthRowsUnmatched: lengths.byId.size - seenIds!.size, examplesWithoutLength } : {}),
        ...(dupReport.duplicatePrompts
          ? { duplicatePrompts: dupReport.duplicatePrompts, duplicateExamples: dupReport.duplicateExamples, movedForDuplicates: dupReport.moved }
          : {}),
      },
      ...(firstDup.id !== undefined && firstDup.of !== undefined ? { firstDuplicate: { id: firstDup.id, of: firstDup.of } } : {}),
      buckets: scheme,
      outputTokens: { all: summarize(outLens), train: summarize(pick(outLens, 0)), val: summarize(pick(outLens, 1)), ...(hasTest ? { test: summarize(pick(outLens, 2)) } : {}) },
      promptTokens: { all: summarize(promptLens) },
      histogram: { all: hist.all, train: hist.train, val: hist.val, ...(hasTest ? { test: hist.test } : {}) },
      majority: {
        bucket: majority,
        accuracy: constantAccuracy(hist.all, majority)!,
        trainBucket: trainMajority,
        valAccuracy: constantAccuracy(hist.val, trainMajority),
        ...(hasTest ? { testAccuracy: constantAccuracy(hist.test, trainMajority) } : {}),
      },
      seconds: Math.round((performance.now() - t0) / 10) / 100,
    };
    await writeJsonAtomic(join(tmp, "scheme.json"), prepared);
    await writeJsonAtomic(join(tmp, "stats.json"), stats);
  }, { force: opts.force });
  return { stats, scheme: prepared };
}

/** Files that mark a directory as `prepare` output (stats.json alone: older versions wrote it last). */
const OUTPUT_MARKERS = ["scheme.json", "stats.json"];

/**
 * `out` is replaced as a whole, so refuse (before any work) to replace something that is not ours: a regular
 * file, or a non-empty directory without prepare's marker files. `force` replaces it anyway.
 */
async function checkOutTarget(out: string, force: boolean): Promise<void> {
  if (force) return;
  const st = await stat(out).catch(() => undefined);
  if (!st) return;
  const hint = "refusing to replace it (choose another --out, or pass --force)";
  if (!st.isDirectory()) throw new LenpredError(`exists and is not a directory; ${hint}`, { file: out });
  const entries = await readdir(out).catch((e: unknown) => { throw readError(e, out); });
  if (entries.length && !entries.some((e) => OUTPUT_MARKERS.includes(e))) {
    throw new LenpredError(`is a non-empty directory that is not lenpred prepare output (no scheme.json/stats.json); ${hint}`, { file: out });
  }
}

/** Load a bucket scheme from a scheme.json (PreparedScheme), a model's lenpred.json, or a bare BucketScheme. */
export function schemeFromJson(value: unknown, file: string): BucketScheme {
  const v = value as { buckets?: unknown; kind?: unknown };
  return validateScheme(v && typeof v === "object" && "buckets" in v ? v.buckets : v, file);
}
