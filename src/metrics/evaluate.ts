/** File-level evaluation used by `lenpred eval`: read split + predictions, join, compute the report. */
import type { PreparedScheme } from "../data/records.js";
import { joinPredictions } from "./join.js";
import { computeMetrics, type MetricsReport } from "./metrics.js";
import { readPreparedSplit } from "./prepared.js";

export async function evaluateFiles(dataDir: string, split: string, predsFile: string): Promise<{ report: MetricsReport; scheme: PreparedScheme }> {
  const { file, scheme, records } = await readPreparedSplit(dataDir, split);
  const preds = await joinPredictions(predsFile, records, scheme.buckets, file);
  const report = computeMetrics(
    scheme.buckets,
    records.map((r) => r.output_tokens),
    records.map((r) => r.output_length_bucket),
    preds,
  );
  return { report, scheme };
}
