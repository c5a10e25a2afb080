/**
 * Join a predictions JSONL to a prepared split by `index` (0-based record of the split). Every record must
 * have exactly one prediction; ids are compared when both sides carry one, so that predictions made for a
 * different split or a re-prepared directory are caught instead of silently scored.
 */
import { bucketCount, type BucketScheme } from "../data/buckets.js";
import type { PreparedRecord } from "../data/records.js";
import type { PredictionRecord } from "../predictor/types.js";
import { LenpredError } from "../util/errors.js";
import { asObject, describe, getNonNegInt } from "../util/fields.js";
import { readJsonl } from "../util/jsonl.js";

function finiteNumber(o: Record<string, unknown>, field: string, place: { file: string; record: number }, min = 0): number {
  const v = o[field];
  if (v === undefined || v === null) throw new LenpredError("missing required field", { ...place, field });
  if (typeof v !== "number" || !Number.isFinite(v) || v < min) {
    throw new LenpredError(`expected a finite number >= ${min}, got ${describe(v)}`, { ...place, field });
  }
  return v;
}

/** Validate one predictions line against the bucket scheme. */
export function parsePredictionRecord(value: unknown, scheme: BucketScheme, place: { file: string; record: number }): PredictionRecord {
  const o = asObject(value, place);
  const k = bucketCount(scheme);
  const index = getNonNegInt(o, "index", place)!;
  const bucket = getNonNegInt(o, "bucket", place)!;
  if (bucket >= k) throw new LenpredError(`bucket ${bucket} out of range 0..${k - 1} of the prepared scheme`, { ...place, field: "bucket" });
  const rec: PredictionRecord = {
    index,
    bucket,
    upperBound: finiteNumber(o, "upperBound", place),
    expectedTokens: finiteNumber(o, "expectedTokens", place),
  };
  if (o.id !== undefined && o.id !== null) {
    if (typeof o.id !== "string" && typeof o.id !== "number") throw new LenpredError(`expected a string or number id, got ${describe(o.id)}`, { ...place, field: "id" });
    rec.id = o.id;
  }
  if (o.probabilities !== undefined && o.probabilities !== null) {
    const p = o.probabilities;
    if (!Array.isArray(p) || p.length !== k || !p.every((x) => typeof x === "number" && Number.isFinite(x) && x >= 0)) {
      throw new LenpredError(`expected ${k} non-negative probabilities`, { ...place, field: "probabilities" });
    }
    rec.probabilities = p as number[];
  }
  return rec;
}

/** Read predictions and return them in split order (result[i] is the prediction for records[i]). */
export async function joinPredictions(predsFile: string, records: readonly PreparedRecord[], scheme: BucketScheme, splitFile: string): Promise<PredictionRecord[]> {
  const out: (PredictionRecord | undefined)[] = new Array(records.length);
  const seenAt = new Int32Array(records.length).fill(-1);
  for await (const { index: line, value } of readJsonl(predsFile)) {
    const place = { file: predsFile, record: line };
    const p = parsePredictionRecord(value, scheme, place);
    if (p.index >= records.length) {
      throw new LenpredError(`index ${p.index} is beyond the split (${splitFile} has ${records.length} records): predictions for another split?`, { ...place, field: "index" });
    }
    if (seenAt[p.index]! >= 0) {
      throw new LenpredError(`duplicate prediction for index ${p.index} (first at record ${seenAt[p.index]})`, { ...place, field: "index" });
    }
    const rid = records[p.index]!.id;
    if (p.id !== undefined && String(p.id) !== String(rid)) {
      throw new LenpredError(`id ${JSON.stringify(p.id)} does not match id ${JSON.stringify(rid)} of record ${p.index} in ${splitFile}`, { ...place, field: "id" });
    }
    seenAt[p.index] = line;
    out[p.index] = p;
  }
  const missing: number[] = [];
  for (let i = 0; i < records.length; i++) if (!out[i]) missing.push(i);
  if (missing.length) {
    const shown = missing.slice(0, 5).join(", ") + (missing.length > 5 ? ", ..." : "");
    throw new LenpredError(`${missing.length} of ${records.length} records of ${splitFile} have no prediction (indices ${shown})`, { file: predsFile });
  }
  return out as PredictionRecord[];
}
