/** `lenpred prepare`: S³ step 1 — turn prompt/answer data into bucket-labelled train/val(/test) JSONL. */
import type { Command} from "commander";
import { Option } from "commander";
import { numberOption } from "../util/number-option.js";

const int = (flag: string, min: number) => numberOption(flag, { int: true, min });
const fraction = (flag: string) => numberOption(flag, { min: 0, max: 1, maxExclusive: true });

export function register(program: Command): void {
  program
    .command("prepare")
    .summary("build labelled train/val data (S³ step 1)")
    .description(
      "Read prompt/answer data, count answer tokens, bucket them and write a seeded train/val(/test) split.\n\n" +
        "Defaults are the S³ reference recipe: Alpaca JSON, prompt = \"<instruction> <input>\", answer tokens counted " +
        "with the DistilBERT/BERT uncased WordPiece tokenizer including [CLS]/[SEP], 8 uniform buckets of 128 up to 1024 " +
        "(bucket = min(tokens // 128, 7)), 90/10 split with seed 42.\n\n" +
        "Inputs (a JSON array or JSONL, streamed): Alpaca {instruction, input, output}; logs {prompt, output} or " +
        "{prompt, output_tokens}; ShareGPT {id, conversations: [{from, value}]} (one example per human->assistant pair).\n\n" +
        "Writes DIR/train.jsonl, val.jsonl[, test.jsonl] ({id, prompt, prompt_tokens, output_tokens, output_length_bucket}), " +
        "DIR/scheme.json (buckets + tokenizer, reused by train and serve) and DIR/stats.json. DIR is replaced atomically: " +
        "on any error or signal nothing is left behind and a previous DIR stays intact; an existing DIR must be earlier prepare " +
        "output (or pass --force). Identical prompts always land in the same split (a warning counts them).",
    )
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  lenpred prepare --input alpaca_data.json --out data/alpaca\n" +
        "  lenpred prepare --input alpaca_data.json --lengths alpaca-train-10k-length.json --label max --out data/vicuna\n" +
        "  lenpred prepare --input logs.jsonl --tokenizer llama --buckets percentile --num-buckets 10 --out data/logs\n" +
        "  lenpred prepare --input sharegpt.json --scheme data/alpaca/scheme.json --test-fraction 0.1 --out data/sg",
    )
    .requiredOption("-i, --input <file>", "input data file (JSON array or JSONL)")
    .requiredOption("-o, --out <dir>", "output directory (replaced atomically)")
    .addOption(new Option("--format <format>", "input record shape").choices(["auto", "alpaca", "log", "sharegpt"]).default("auto"))
    .option("--template <template>", "Alpaca prompt template with {instruction} and {input}; trailing whitespace is trimmed", "{instruction} {input}")
    .option("-t, --tokenizer <spec>", "bert-base-uncased (bundled), llama, cl100k, o200k, hf:org/name[@rev], or a tokenizer.json path", "bert-base-uncased")
    .option("--no-special-tokens", "do not count special tokens ([CLS]/[SEP], <s>) in prompt_tokens/output_tokens")
    .option("--lengths <file>", "Vicuna length file {id, L_gt, L_t0.0, ...} joined by id (= Alpaca position + 1); keeps only joined records")
    .option("--label <label>", "label from --lengths: max | mean (over temperatures) | L_gt | L_t0.3 (or t0.3, ...)")
    .addOption(new Option("--buckets <kind>", "bucket scheme").choices(["uniform", "percentile", "log"]).default("uniform"))
    .option("--max-length <tokens>", "upper edge of the last bucket (longer answers go in the last bucket)", int("--max-length", 1), 1024)
    .option("--num-buckets <n>", "number of buckets (reference 8, paper 10)", int("--num-buckets", 1), 8)
    .option("--scheme <file>", "reuse the bucket scheme of a scheme.json or model lenpred.json (overrides --buckets)")
    .option("--val-fraction <f>", "validation fraction", fraction("--val-fraction"), 0.1)
    .option("--test-fraction <f>", "test fraction (0 = no test split)", fraction("--test-fraction"), 0)
    .option("--seed <n>", "split seed", int("--seed", 0), 42)
    .option("--max-record-bytes <n>", "longest input record (JSONL line / JSON array element) accepted", int("--max-record-bytes", 1), 8 * 1024 * 1024)
    .option("--force", "replace --out even if it is a file or a directory that is not prepare output")
    .option("--threads <n>", "worker threads for token counting (default: number of cores, at most 4; 1 = no workers)", int("--threads", 1))
    .option("-q, --quiet", "no progress bar or summary")
    .action(async (o: {
      input: string; out: string; format: "auto" | "alpaca" | "log" | "sharegpt"; template: string; tokenizer: string;
      specialTokens: boolean; lengths?: string; label?: string; buckets: "uniform" | "percentile" | "log"; maxLength: number;
      numBuckets: number; scheme?: string; valFraction: number; testFraction: number; seed: number; threads?: number; quiet?: boolean;
      maxRecordBytes: number; force?: boolean;
    }) => {
      const { prepareDataset, schemeFromJson } = await import("../data/prepare.js");
      const { defaultThreads } = await import("../data/count-pool.js");
      const { formatSummary } = await import("../data/summary.js");
      let schemeFile;
      if (o.scheme) {
        const { readJsonFile } = await import("../util/json-file.js");
        schemeFile = schemeFromJson(await readJsonFile(o.scheme, { missing: "cannot read scheme file", unreadable: () => "cannot read scheme file" }), o.scheme);
      }
      const bar = !o.quiet && process.stderr.isTTY ? await makeBar() : undefined;
      try {
        const { stats } = await prepareDataset({
          input: o.input, out: o.out, format: o.format, template: o.template, tokenizer: o.tokenizer,
          specialTokens: o.specialTokens, lengths: o.lengths, label: o.label,
          buckets: { kind: o.buckets, maxLength: o.maxLength, count: o.numBuckets }, schemeFile,
          valFraction: o.valFraction, testFraction: o.testFraction, seed: o.seed, threads: o.threads ?? defaultThreads(),
          onProgress: bar ? (b, t) => { bar.setTotal(t); bar.update(b); } : undefined,
          maxRecordBytes: o.maxRecordBytes, force: o.force,
        });
        bar?.stop();
        const c = stats.counts;
        if (c.duplicatePrompts) {
          const f = stats.firstDuplicate;
          process.stderr.write(
            `lenpred: warning: ${o.input}: ${c.duplicatePrompts} examples repeat an earlier prompt (${c.duplicateExamples} also its answer)` +
              (f ? `, first id ${JSON.stringify(f.id)} repeats id ${JSON.stringify(f.of)}` : "") +
              `; identical prompts were kept in one split (${c.movedForDuplicates} moved)\n`,
          );
        }
        if (!o.quiet) process.stdout.write(formatSummary(stats, o.out));
      } finally {
        bar?.stop();
      }
    });
}

async function makeBar() {
  const { default: cliProgress } = await import("cli-progress");
  const bar = new cliProgress.SingleBar(
    { format: "prepare |{bar}| {percentage}% of input | {eta_formatted} left", stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(1, 0);
  return bar;
}
