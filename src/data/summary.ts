/** Human-readable summary printed by `lenpred prepare`. */
import { lowerBound, upperBound } from "./buckets.js";
import type { PrepareStats } from "./prepare.js";

const pct = (x: number | null | undefined) => (x === null || x === undefined ? "n/a" : `${(100 * x).toFixed(1)} %`);

export function formatSummary(s: PrepareStats, outDir: string): string {
  const c = s.counts;
  const lines: string[] = [];
  lines.push(`prepared ${c.examples} examples from ${s.input} (${s.format}, label ${s.label}) in ${s.seconds.toFixed(1)} s`);
  lines.push(`  tokenizer ${s.tokenizer}, special tokens ${s.specialTokens ? "counted" : "excluded"}`);
  if (c.lengthRowsUnmatched !== undefined) lines.push(`  joined with length file: ${c.examples} matched, ${c.examplesWithoutLength} input records without a length, ${c.lengthRowsUnmatched} length rows without an input record`);
  if (c.recordsWithoutPairs) lines.push(`  ${c.recordsWithoutPairs} conversations had no human->assistant pair`);
  lines.push(`  split (seed ${s.seed}): train ${c.train}, val ${c.val}${c.test !== undefined ? `, test ${c.test}` : ""}`);
  const o = s.outputTokens.all!;
  lines.push(`  output tokens: mean ${o.mean}, p50 ${o.p50}, p90 ${o.p90}, p99 ${o.p99}, max ${o.max}`);
  const p = s.promptTokens.all!;
  lines.push(`  prompt tokens: mean ${p.mean}, p50 ${p.p50}, p90 ${p.p90}, p99 ${p.p99}, max ${p.max}`);
  lines.push(`  buckets (${s.buckets.kind}):`);
  const total = s.histogram.all.reduce((a, b) => a + b, 0);
  const last = s.buckets.edges.length - 1;
  s.histogram.all.forEach((n, b) => {
    const range = b === last ? `[${lowerBound(s.buckets, b)}, inf)` : `[${lowerBound(s.buckets, b)}, ${upperBound(s.buckets, b)})`;
    lines.push(`    ${String(b).padStart(2)} ${range.padEnd(14)} ${String(n).padStart(8)}  ${pct(n / total).padStart(7)}`);
  });
  lines.push(`  majority class: bucket ${s.majority.bucket}, accuracy ${pct(s.majority.accuracy)} on all data; train majority on val ${pct(s.majority.valAccuracy)}`);
  lines.push(`  wrote ${outDir}/{${["train", "val", ...(c.test !== undefined ? ["test"] : [])].join(",")}}.jsonl, scheme.json, stats.json`);
  return lines.join("\n") + "\n";
}
