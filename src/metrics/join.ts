/**
 * Join a predictions JSONL to a prepared split by `index` (0-based record of the split). Every record must
 * have exactly one prediction; ids are compared when both sides carry one, so that predictions made for a
 * different split or a re-prepared directory are caught instead of silently scored. The format and its
 * validation are data/predictions-file.ts's.
 */
import type { BucketScheme } from "../data/buckets.js";
import { parsePredictionLine, readPredictionsFile, type PredictionLine } from "../data/predictions-file.js";
import type { PreparedRecord } from "../data/records.js";

/** Validate one predictions line against the bucket scheme. */
export const parsePredictionRecord = (value: unknown, scheme: BucketScheme, place: { file: string; record: number }): PredictionLine =>
  parsePredictionLine(value, scheme, place);

/** Read predictions and return them in split order (result[i] is the prediction for records[i]). */
export function joinPredictions(predsFile: string, records: readonly PreparedRecord[], scheme: BucketScheme, splitFile: string): Promise<PredictionLine[]> {
  return readPredictionsFile(predsFile, scheme, records.length, { of: splitFile, idOf: (i) => records[i]!.id });
}
