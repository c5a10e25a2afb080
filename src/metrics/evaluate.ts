/** File-level evaluation used by `lenpred eval`: read split + predictions, join, compute the report. */
import type { PreparedScheme } from "../data/records.js";
import { joinPredictions } from "./join.js";
import { computeMetrics, type MetricsReport } from "./metrics.js";
import { readPreparedSplit } from "../data/prepared-dir.js";

export interface EvaluateResult {
  report: MetricsReport;
  scheme: PreparedScheme;
  /**
   * Predictions whose upperBound is not edges[bucket] of the prepared scheme: fine for a predictor that adds a
   * margin, but usually a sign that the model was trained with a different bucket scheme.
   */
  upperBoundMismatches: number;
}

export async function evaluateFiles(dataDir: string, split: string, predsFile: string): Promise<EvaluateResult> {
  const { file, scheme, records } = await readPreparedSplit(dataDir, split);
  const preds = await joinPredictions(predsFile, records, scheme.buckets, file);
  const report = computeMetrics(
    scheme.buckets,
    records.map((r) => r.output_tokens),
    records.map((r) => r.output_length_bucket),
    preds,
  );
  const upperBoundMismatches = preds.filter((p) => p.upperBound !== scheme.buckets.edges[p.bucket]).length;
  return { report, scheme, upperBoundMismatches };
}
