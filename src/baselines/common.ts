/** Shared plumbing for the baseline predictors: prediction construction, model-directory I/O, batch scoring. */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { bucketOf, upperBound, type BucketScheme } from "../data/buckets.js";
import type { PreparedRecord } from "../data/records.js";
import { META_FILE, modelFile, type ModelMeta } from "../predictor/load.js";
import type { Prediction, PredictionRecord, Predictor } from "../predictor/types.js";
import { openAtomicWriteStream, replaceDirAtomic, writeJsonAtomic } from "../util/atomic.js";
import { LenpredError, type ErrorPlace } from "../util/errors.js";
import { toJsonlLine } from "../util/jsonl.js";

/** A prediction for a bucket with the predictor semantics `upperBound = edges[bucket]`. */
export function bucketPrediction(scheme: BucketScheme, bucket: number, expectedTokens: number, probabilities?: number[]): Prediction {
  const p: Prediction = { bucket, upperBound: upperBound(scheme, bucket), expectedTokens };
  if (probabilities) p.probabilities = probabilities;
  return p;
}

/** Prediction from a point estimate alone: the bucket that contains it. */
export function pointPrediction(scheme: BucketScheme, tokens: number): Prediction {
  return bucketPrediction(scheme, bucketOf(scheme, tokens), tokens);
}

/** A Predictor whose work is synchronous; predictBatch just maps. */
export abstract class SyncPredictor implements Predictor {
  abstract readonly name: string;
  abstract readonly buckets: BucketScheme;
  abstract predictSync(prompt: string): Prediction;
  async predict(prompt: string): Promise<Prediction> {
    return this.predictSync(prompt);
  }
  async predictBatch(prompts: string[]): Promise<Prediction[]> {
    return prompts.map((p) => this.predictSync(p));
  }
}

/** Write a model directory atomically: lenpred.json plus optional binary files. */
export async function saveModelDir(dir: string, meta: ModelMeta, files: Record<string, Uint8Array> = {}): Promise<void> {
  await replaceDirAtomic(dir, async (tmp) => {
    for (const [name, data] of Object.entries(files)) {
      const { writeFile } = await import("node:fs/promises");
      await writeFile(join(tmp, name), data);
    }
    await writeJsonAtomic(join(tmp, META_FILE), meta);
  });
}

export function metaNumber(meta: ModelMeta, field: string, dir: string): number {
  const v = meta[field];
  if (typeof v !== "number" || !Number.isFinite(v)) throw new LenpredError("expected a finite number", { file: join(dir, META_FILE), field });
  return v;
}

/**
 * Read `expected` float32 values from file `name` of a model directory (confined to it, a regular file of
 * exactly that size: checked before reading, so a bad name cannot stream a device into memory).
 */
export async function readFloat32File(dir: string, name: string, expected: number, from?: ErrorPlace): Promise<Float32Array> {
  const file = modelFile(dir, name, { from, missing: "model weights missing" });
  const size = (await stat(file)).size;
  if (size !== expected * 4) throw new LenpredError(`expected ${expected} float32 values (${expected * 4} bytes), found ${size} bytes`, { file });
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (e) {
    throw new LenpredError(`cannot read model weights (${(e as NodeJS.ErrnoException).code})`, { file });
  }
  if (buf.byteLength !== expected * 4) throw new LenpredError(`expected ${expected} float32 values (${expected * 4} bytes), found ${buf.byteLength} bytes`, { file });
  const out = new Float32Array(expected);
  new Uint8Array(out.buffer).set(buf);
  return out;
}

export function float32Bytes(...arrays: Float32Array[]): Uint8Array {
  const total = arrays.reduce((s, a) => s + a.length, 0);
  const out = new Float32Array(total);
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return new Uint8Array(out.buffer);
}

/** Predict every record of a split and write a predictions JSONL atomically. */
export async function writeSplitPredictions(predictor: Predictor, records: readonly PreparedRecord[], out: string, opts: { probabilities?: boolean; batch?: number; onProgress?: (done: number) => void } = {}): Promise<PredictionRecord[]> {
  const batch = opts.batch ?? 256;
  const w = await openAtomicWriteStream(out);
  const all: PredictionRecord[] = [];
  try {
    for (let i = 0; i < records.length; i += batch) {
      const slice = records.slice(i, i + batch);
      const preds = await predictor.predictBatch(slice.map((r) => r.prompt));
      let chunk = "";
      preds.forEach((p, j) => {
        const rec: PredictionRecord = { index: i + j, id: slice[j]!.id, bucket: p.bucket, upperBound: p.upperBound, expectedTokens: round(p.expectedTokens) };
        if (opts.probabilities !== false && p.probabilities) rec.probabilities = p.probabilities.map((x) => round(x, 6));
        all.push(rec);
        chunk += toJsonlLine(rec);
      });
      await w.write(chunk);
      opts.onProgress?.(Math.min(records.length, i + batch));
    }
    await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
  return all;
}

function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The `id`s (as strings) of every record of a JSONL file, e.g. a prepared split to keep out of training. */
export async function readIdSet(file: string): Promise<Set<string>> {
  const { readJsonl } = await import("../util/jsonl.js");
  const ids = new Set<string>();
  for await (const { index, value } of readJsonl(file)) {
    const id = (value as { id?: unknown } | null)?.id;
    if (typeof id !== "string" && typeof id !== "number") throw new LenpredError("missing or non-scalar id", { file, record: index, field: "id" });
    ids.add(String(id));
  }
  return ids;
}

/** Median of numbers (mean of the two middle values for even counts). */
export function median(values: ArrayLike<number>): number {
  if (values.length === 0) throw new LenpredError("median of no values");
  const s = Float64Array.from(values).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Whitespace word count: the tokenizer-free prompt-length feature the baselines use at predict time. */
export function wordCount(text: string): number {
  const m = text.match(/\S+/g);
  return m ? m.length : 0;
}
