/**
 * The prepared-data directory (`lenpred prepare --out DIR`) as its readers see it: `scheme.json` and the
 * split JSONLs (`train|val|test.jsonl`). The one owner of that layout for eval, baseline, train and simulate;
 * everything is validated field by field so that errors name file, record and field.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { bucketCount, validateScheme, type BucketScheme } from "./buckets.js";
import { SPLITS, type PreparedRecord, type PreparedScheme, type SplitName } from "./records.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { LenpredError } from "../util/errors.js";
import { asObject, getNonNegInt, requireString } from "../util/fields.js";
import { readJsonl, toJsonlLine } from "../util/jsonl.js";
import { readJsonFile } from "../util/json-file.js";

const SCHEME_FILE = "scheme.json";
export const splitFile = (dir: string, split: SplitName): string => join(dir, `${split}.jsonl`);

export function checkSplit(split: string): SplitName {
  if (!(SPLITS as readonly string[]).includes(split)) {
    throw new LenpredError(`unknown split '${split}' (expected one of ${SPLITS.join(", ")})`);
  }
  return split as SplitName;
}

/** `scheme.json` of a prepared directory, with its tokenizer (eval, baseline, train). */
async function readPreparedScheme(dir: string): Promise<PreparedScheme> {
  const file = join(dir, SCHEME_FILE);
  const raw = await readJsonFile(file, { missing: "not a prepared data directory (no scheme.json; run `lenpred prepare`)" });
  const obj = asObject(raw, { file });
  return {
    ...(obj as unknown as PreparedScheme),
    buckets: validateScheme(obj.buckets, file),
    tokenizer: requireString(obj, "tokenizer", { file }),
  };
}

/** Only the bucket scheme of a `scheme.json` that sits beside a split file (simulate needs no tokenizer). */
export async function readBucketScheme(file: string): Promise<BucketScheme> {
  const unreadable = (code: string | undefined) => `cannot read bucket scheme (${code}); it must sit beside the split as scheme.json`;
  const v = await readJsonFile(file, { missing: unreadable("ENOENT"), unreadable });
  return validateScheme(asObject(v, { file }).buckets, file);
}

/** A split with its records: what eval, baseline and training read. */
export interface PreparedSplit {
  file: string;
  scheme: PreparedScheme;
  records: PreparedRecord[];
}

export async function readPreparedSplit(dir: string, split: string): Promise<PreparedSplit> {
  const name = checkSplit(split);
  const scheme = await readPreparedScheme(dir);
  const file = splitFile(dir, name);
  const k = bucketCount(scheme.buckets);
  const records: PreparedRecord[] = [];
  for await (const { index, value } of readJsonl(file)) {
    const place = { file, record: index };
    const o = asObject(value, place);
    const id = o.id;
    if (typeof id !== "string" && typeof id !== "number") throw new LenpredError("missing or non-scalar id", { ...place, field: "id" });
    const bucket = getNonNegInt(o, "output_length_bucket", place)!;
    if (bucket >= k) throw new LenpredError(`bucket ${bucket} out of range 0..${k - 1} of scheme.json`, { ...place, field: "output_length_bucket" });
    records.push({
      id,
      prompt: requireString(o, "prompt", place),
      prompt_tokens: getNonNegInt(o, "prompt_tokens", place)!,
      output_tokens: getNonNegInt(o, "output_tokens", place)!,
      output_length_bucket: bucket,
    });
  }
  if (records.length === 0) throw new LenpredError("split is empty", { file });
  return { file, scheme, records };
}

/**
 * Resolve `--data` (a prepared dir or a split JSONL) and `--split` (a split name or "all") into split files
 * and the scheme file beside them.
 */
export function resolveSplitFiles(data: string, split: string): { files: string[]; schemeFile: string } {
  if (!existsSync(data)) throw new LenpredError("not found", { file: data });
  if (statSync(data).isDirectory()) {
    if (split === "all") {
      // `prepare` writes no test split by default, so "all" means every split that exists.
      const files = SPLITS.map((s) => splitFile(data, s)).filter((f) => existsSync(f));
      if (files.length === 0) throw new LenpredError(`no ${SPLITS.join("/")}.jsonl here (is this a 'lenpred prepare' output dir?)`, { file: data });
      return { files, schemeFile: join(data, SCHEME_FILE) };
    }
    const file = join(data, `${split}.jsonl`);
    if (!existsSync(file)) {
      const have = SPLITS.filter((s) => existsSync(splitFile(data, s)));
      throw new LenpredError(`split file not found (splits here: ${have.join(", ") || "none"}; 'lenpred prepare --test-fraction 0.1' makes a test split)`, { file, field: "split" });
    }
    return { files: [file], schemeFile: join(data, SCHEME_FILE) };
  }
  if (split === "all") throw new LenpredError("--split all needs --data to be a prepared directory", { file: data });
  return { files: [data], schemeFile: join(dirname(data), SCHEME_FILE) };
}

export interface SplitLengths { prompt: number[]; output: number[]; files: string[] }

/** Only prompt/output token counts of split records (the simulator needs no prompts), up to `limit` records. */
export async function readSplitLengths(files: string[], limit = Infinity): Promise<SplitLengths> {
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
 * Write one split and `scheme.json` (each file atomically) — a prepared directory other commands can read,
 * e.g. `replay --prepared-out` for `simulate`. (`lenpred prepare` streams its own splits.)
 */
export async function writePreparedSplit(dir: string, split: SplitName, scheme: PreparedScheme, records: readonly PreparedRecord[]): Promise<void> {
  await writeFileAtomic(splitFile(dir, split), records.map((r) => toJsonlLine(r)).join(""));
  await writeJsonAtomic(join(dir, SCHEME_FILE), scheme);
}
