/** Human-readable rendering of a MetricsReport (eval's stdout; `--json` gives the raw report). */
import type { MetricsReport } from "./metrics.js";

const pct = (v: number) => `${(100 * v).toFixed(2)} %`;
const num = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : "n/a");

/** Metric rows (label, formatted value) in a fixed order; also used for the docs tables. */
export function metricRows(r: MetricsReport): [string, string][] {
  return [
    ["records", String(r.n)],
    ["bucket accuracy", pct(r.bucketAccuracy)],
    ["within-one-bucket accuracy", pct(r.withinOneBucketAccuracy)],
    ["macro-F1", num(r.macroF1, 4)],
    ["MAE (tokens) = Error", num(r.mae)],
    ["RMSE (tokens)", num(r.rmse)],
    ["Acc-50", pct(r.acc50)],
    ["Acc-100", pct(r.acc100)],
    ["under-allocation rate", pct(r.underAllocationRate)],
    ["over-allocation waste", pct(r.overAllocationWaste)],
    ["mean reserved / actual tokens", `${num(r.meanReserved)} / ${num(r.meanActual)}`],
    ["Kendall tau-b", num(r.kendallTauB, 4)],
    ["log-loss (bucket probabilities)", r.logLoss === undefined ? "n/a" : num(r.logLoss, 4)],
  ];
}

function table(header: string[], rows: string[][]): string {
  const w = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) => cells.map((s, c) => (c === 0 ? s.padEnd(w[c]!) : s.padStart(w[c]!))).join("  ");
  return [line(header), w.map((x) => "-".repeat(x)).join("  "), ...rows.map(line)].join("\n");
}

export function formatReport(r: MetricsReport, title?: string): string {
  const parts: string[] = [];
  if (title) parts.push(title);
  parts.push(table(["metric", "value"], metricRows(r)));
  parts.push("");
  parts.push(table(
    ["bucket", "tokens", "support", "predicted", "precision", "recall", "F1"],
    r.perBucket.map((b, i) => [String(b.bucket), i === r.perBucket.length - 1 && i > 0 ? `>= ${r.perBucket[i - 1]!.edge}` : `< ${b.edge}`, String(b.support), String(b.predicted), num(b.precision, 3), num(b.recall, 3), num(b.f1, 3)]),
  ));
  parts.push("");
  parts.push("confusion matrix (rows: actual bucket, columns: predicted bucket)");
  const k = r.confusion.length;
  parts.push(table(["", ...Array.from({ length: k }, (_, i) => String(i))], r.confusion.map((row, i) => [String(i), ...row.map(String)])));
  return parts.join("\n");
}

/** One column per report, one row per metric: the comparison table of `lenpred eval --preds a b c`. */
export function comparisonTable(named: { name: string; report: MetricsReport }[], markdown = false): string {
  const rows = named.map(({ report }) => metricRows(report));
  const labels = rows[0]!.map(([label]) => label);
  const header = ["metric", ...named.map((n) => n.name)];
  const body = labels.map((label, i) => [label, ...rows.map((r) => r[i]![1])]);
  if (markdown) {
    const esc = (s: string) => s.replace(/\|/g, "\\|");
    return [
      `| ${header.map(esc).join(" | ")} |`,
      `|${header.map((_, c) => (c === 0 ? "---" : "---:")).join("|")}|`,
      ...body.map((r) => `| ${r.map(esc).join(" | ")} |`),
    ].join("\n");
  }
  return table(header, body);
}
