/** `lenpred baseline`'s files: the predictions JSONL of a split, and the ids of a split to keep out of training. */
import type { PreparedRecord } from "../data/records.js";
import type { PredictionRecord, Predictor } from "../model/prediction.js";
import { openAtomicWriteStream } from "../util/atomic.js";
import { LenpredError } from "../util/errors.js";
import { toJsonlLine } from "../util/jsonl.js";

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
