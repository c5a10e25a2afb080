/** `lenpred eval`: score a predictions JSONL against a prepared split with the shared metrics library. */
import type { Command } from "commander";

export function register(program: Command): void {
  program
    .command("eval")
    .description("score predictions (JSONL of {index, id?, bucket, upperBound, expectedTokens}) against a prepared split")
    .requiredOption("--data <dir>", "prepared data directory (from `lenpred prepare`)")
    .option("--split <name>", "split the predictions were made for: train, val or test", "val")
    .requiredOption("--preds <file>", "predictions JSONL; `index` = 0-based record of the split (ids are checked when present)")
    .option("--json", "also print the full report as one JSON object on the last line")
    .option("--plot <file.svg>", "write a confusion-matrix heat map (SVG)")
    .addHelpText("after", `
Metrics: bucket accuracy, within-one-bucket accuracy, macro-F1, confusion matrix; MAE/RMSE in tokens of
expectedTokens (MAE is the Sequence-Scheduling "Error"), Acc-50/Acc-100 (|expectedTokens - true| <= 50/100);
under-allocation rate (upperBound < true length); over-allocation waste (unused share of reserved tokens);
Kendall tau-b between expectedTokens and true lengths. See docs/baselines.md.

Example:
  lenpred baseline --kind ngram --data /tmp/alpaca-s3 --split val --out preds.jsonl
  lenpred eval --data /tmp/alpaca-s3 --split val --preds preds.jsonl --plot confusion.svg`)
    .action(async (opts: { data: string; split: string; preds: string; json?: boolean; plot?: string }) => {
      const { evaluateFiles } = await import("../metrics/evaluate.js");
      const { formatReport } = await import("../metrics/format.js");
      const { report, scheme } = await evaluateFiles(opts.data, opts.split, opts.preds);
      if (opts.plot) {
        const { LenpredError } = await import("../util/errors.js");
        if (!opts.plot.toLowerCase().endsWith(".svg")) throw new LenpredError("--plot writes SVG; give a file name ending in .svg", { file: opts.plot });
        const { confusionMatrixSvg } = await import("../metrics/plot.js");
        const { writeFileAtomic } = await import("../util/atomic.js");
        await writeFileAtomic(opts.plot, await confusionMatrixSvg(report.confusion, scheme.buckets, `${opts.preds} on ${opts.split}`));
      }
      console.log(formatReport(report, `${opts.preds} vs ${opts.data} (${opts.split}, label ${scheme.label ?? "?"}, tokenizer ${scheme.tokenizer})`));
      if (opts.plot) console.log(`confusion matrix plot: ${opts.plot}`);
      if (opts.json) console.log(JSON.stringify({ data: opts.data, split: opts.split, preds: opts.preds, ...report }));
    });
}
