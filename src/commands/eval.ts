/** `lenpred eval`: score a predictions JSONL against a prepared split with the shared metrics library. */
import type { Command } from "commander";

export function register(program: Command): void {
  program
    .command("eval")
    .description("score predictions (JSONL of {index, id?, bucket, upperBound, expectedTokens}) against a prepared split")
    .requiredOption("--data <dir>", "prepared data directory (from `lenpred prepare`)")
    .option("--split <name>", "split the predictions were made for: train, val or test", "val")
    .requiredOption("--preds <files...>", "predictions JSONL(s); `index` = 0-based record of the split (ids are checked when present). Several files: one comparison table, a column per file")
    .option("--json", "print the report as one JSON object on stdout ({data, split, reports: [...]} for several files); the human-readable report then goes to stderr")
    .option("--markdown", "print the comparison table as Markdown (for docs)")
    .option("--plot <file.svg>", "write a confusion-matrix heat map (SVG; with several --preds, of the first)")
    .addHelpText("after", `
Metrics: bucket accuracy, within-one-bucket accuracy, macro-F1, confusion matrix; MAE/RMSE in tokens of
expectedTokens (MAE is the Sequence-Scheduling "Error"), Acc-50/Acc-100 (|expectedTokens - true| <= 50/100);
under-allocation rate (upperBound < true length); over-allocation waste (unused share of reserved tokens);
Kendall tau-b between expectedTokens and true lengths. See docs/baselines.md.

Example:
  lenpred baseline --kind ngram --data /tmp/alpaca-s3 --split val --out preds.jsonl
  lenpred eval --data /tmp/alpaca-s3 --split val --preds preds.jsonl --plot confusion.svg`)
    .action(async (opts: { data: string; split: string; preds: string[]; json?: boolean; markdown?: boolean; plot?: string }) => {
      const { LenpredError } = await import("../util/errors.js");
      if (opts.plot && !opts.plot.toLowerCase().endsWith(".svg")) throw new LenpredError("--plot writes SVG; give a file name ending in .svg", { file: opts.plot });
      const { evaluateFiles } = await import("../metrics/evaluate.js");
      const { formatReport, comparisonTable } = await import("../metrics/format.js");
      const { basename } = await import("node:path");
      const results = await Promise.all(opts.preds.map(async (preds) => ({ preds, name: basename(preds).replace(/\.jsonl$/, ""), ...(await evaluateFiles(opts.data, opts.split, preds)) })));
      const { scheme } = results[0]!;
      for (const r of results) {
        if (r.upperBoundMismatches) process.stderr.write(`lenpred: warning: ${r.preds}: ${r.upperBoundMismatches} of ${r.report.n} predictions have upperBound != edges[bucket] of ${opts.data}/scheme.json (a model with another bucket scheme, or a margin?)\n`);
      }
      if (opts.plot) {
        const { confusionMatrixSvg } = await import("../metrics/plot.js");
        const { writeFileAtomic } = await import("../util/atomic.js");
        await writeFileAtomic(opts.plot, await confusionMatrixSvg(results[0]!.report.confusion, scheme.buckets, `${results[0]!.name} on ${opts.split}`));
      }
      // With --json, stdout carries only the JSON (a pipe into jq must not see the table).
      const say = opts.json ? (text: string) => void process.stderr.write(text + "\n") : (text: string) => console.log(text);
      const title = `${opts.data} (${opts.split}, label ${scheme.label ?? "?"}, tokenizer ${scheme.tokenizer})`;
      if (results.length === 1) say(formatReport(results[0]!.report, `${opts.preds[0]} vs ${title}`));
      else say(`${title}\n` + comparisonTable(results, opts.markdown));
      if (opts.plot) say(`confusion matrix plot: ${opts.plot}`);
      if (opts.json) {
        const strip = (r: (typeof results)[number]) => ({ preds: r.preds, ...r.report });
        console.log(JSON.stringify(results.length === 1 ? { data: opts.data, split: opts.split, ...strip(results[0]!) } : { data: opts.data, split: opts.split, reports: results.map(strip) }));
      }
    });
}
