/** `lenpred baseline`'s files: the predictions JSONL of a split, and the ids of a split to keep out of training. */
import type { PreparedRecord } from "../data/records.js";
import type { PredictionRecord, Predictor } from "../model/prediction.js";
import { predictionLine, PredictionsWriter } from "../data/predictions-file.js";
import { LenpredError } from "../util/errors.js";

/** Predict every record of a split and write a predictions JSONL atomically (data/predictions-file.ts's format). */
export async function writeSplitPredictions(predictor: Predictor, records: readonly PreparedRecord[], out: string, opts: { probabilities?: boolean; batch?: number; onProgress?: (done: number) => void } = {}): Promise<PredictionRecord[]> {
  const batch = opts.batch ?? 256;
  const w = await PredictionsWriter.open(out);
  const all: PredictionRecord[] = [];
  try {
    for (let i = 0; i < records.length; i += batch) {
      const slice = records.slice(i, i + batch);
      const preds = await predictor.predictBatch(slice.map((r) => r.prompt));
      const lines = preds.map((p, j) => predictionLine(i + j, slice[j]!.id, p, { probabilities: opts.probabilities }));
      all.push(...lines);
      await w.write(lines);
      opts.onProgress?.(Math.min(records.length, i + batch));
    }
    await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
  return all;
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
