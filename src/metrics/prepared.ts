/**
 * Reading a prepared directory (`lenpred prepare --out DIR`) for eval and the baselines: `scheme.json` and
 * one split's JSONL, validated field by field so that errors name file, record and field.
 */
import { join } from "node:path";
import { bucketCount, validateScheme } from "../data/buckets.js";
import { SPLITS, type PreparedRecord, type PreparedScheme, type SplitName } from "../data/records.js";
import { LenpredError } from "../util/errors.js";
import { asObject, getNonNegInt, requireString } from "../util/fields.js";
import { readJsonl } from "../util/jsonl.js";
import { readJsonFile } from "../util/json-file.js";

export function checkSplit(split: string): SplitName {
  if (!(SPLITS as readonly string[]).includes(split)) {
    throw new LenpredError(`unknown split '${split}' (expected one of ${SPLITS.join(", ")})`);
  }
  return split as SplitName;
}

export async function readPreparedScheme(dir: string): Promise<PreparedScheme> {
  const file = join(dir, "scheme.json");
  const raw = await readJsonFile(file, { missing: "not a prepared data directory (no scheme.json; run `lenpred prepare`)" });
  const obj = asObject(raw, { file });
  return {
    ...(obj as unknown as PreparedScheme),
    buckets: validateScheme(obj.buckets, file),
    tokenizer: requireString(obj, "tokenizer", { file }),
  };
}

/** Column view of a split: what eval and training need, without keeping per-record objects around. */
export interface PreparedSplit {
  file: string;
  scheme: PreparedScheme;
  records: PreparedRecord[];
}

export async function readPreparedSplit(dir: string, split: string): Promise<PreparedSplit> {
  const name = checkSplit(split);
  const scheme = await readPreparedScheme(dir);
  const file = join(dir, `${name}.jsonl`);
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
