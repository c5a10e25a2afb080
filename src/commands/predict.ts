/** `lenpred predict`: output-length predictions for one prompt or a JSONL file of prompts. */
import type { Command } from "commander";
import { quantileOption } from "../util/number-option.js";
// A light module (no onnxruntime): the prompt limit and its check.
import { checkPrompt, DEFAULT_MAX_PROMPT_CHARS } from "../predictor/length-predictor.js";

const MAX_ARGV_PROMPT = 16_384;

/**
 * Read the prompt from stdin, stopping as soon as it is certainly over the limit: a code point is at most 4 UTF-8
 * bytes, so more than 4 × maxChars bytes cannot be a valid prompt (`lenpred predict - < /dev/zero` ends at once).
 */
async function readStdinPrompt(maxChars: number): Promise<string> {
  const { LenpredError } = await import("../util/errors.js");
  const maxBytes = 4 * maxChars;
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const c of process.stdin) {
    chunks.push(c as Buffer);
    bytes += (c as Buffer).length;
    if (bytes > maxBytes) {
      process.stdin.destroy();
      throw new LenpredError(`the prompt on stdin is longer than ${maxChars} characters (the prompt-size limit; raise it with --max-prompt-chars)`, { field: "prompt" });
    }
  }
  return Buffer.concat(chunks).toString("utf8");
}

export function register(program: Command): void {
  program
    .command("predict")
    .description("predict how many tokens an LLM will answer with: one prompt, or --file prompts.jsonl")
    .argument("[prompt]", "the prompt text (omit with --file; `-` or omitted with piped stdin reads it from stdin)")
    .option("--model <dir|name>", "model directory (any kind: distilbert, ngram, ensemble, linear, median, majority) or bundled model name (alpaca-s3, vicuna-7b) or Hugging Face hub repository (org/name[@rev], hf:org/name); default: alpaca-s3")
    .option("--file <jsonl>", "JSONL of prompts: objects with a prompt field (a prepared split works) or JSON strings")
    .option("--out <jsonl>", "write predictions here (default stdout); the format `lenpred eval --preds` reads")
    .option("--field <name>", "prompt field of --file objects", "prompt")
    .option("--quantile <q>", "conservative mode: smallest bucket whose cumulative probability is ≥ q (e.g. 0.9)", quantileOption("--quantile"))
    .option("--batch-size <n>", "prompts per ONNX run (grouped by length)", "32")
    .option("--threads <n>", "onnxruntime intra-op threads", "2")
    .option("--max-prompt-chars <n>", "longest prompt accepted (argument, stdin or --file record), in characters", String(DEFAULT_MAX_PROMPT_CHARS))
    .option("--no-probabilities", "leave per-bucket probabilities out of the output")
    .option("--no-progress", "no progress bar for --file")
    .addHelpText("after", `
Output: {bucket, upperBound, expectedTokens, probabilities} — upperBound = the bucket's upper edge
((bucket + 1) × bucket size: the tokens to reserve), expectedTokens = probability-weighted bucket midpoints
(or the regression head's estimate). With --file each line also has index (0-based record) and id.

Examples:
  lenpred predict "Write a haiku about autumn."                       # the bundled alpaca-s3
  lenpred predict --model vicuna-7b --quantile 0.9 "Explain quicksort in detail."
  cat long-prompt.txt | lenpred predict --model models/alpaca-s3
  lenpred predict --model /tmp/model --file /tmp/alpaca-s3/test.jsonl --out preds.jsonl
  lenpred eval --data /tmp/alpaca-s3 --split test --preds preds.jsonl
See docs/predict.md.`)
    .action(async (prompt: string | undefined, o: { model?: string; file?: string; out?: string; field: string; quantile?: number; batchSize: string; threads: string; maxPromptChars: string; probabilities: boolean; progress: boolean }) => {
      const { LenpredError } = await import("../util/errors.js");
      const { parseNumberOption } = await import("../util/number-option.js");
      const posInt = (v: string, name: string) => parseNumberOption(`--${name}`, v, { int: true, min: 1 });
      const quantile = o.quantile;
      if (prompt !== undefined && o.file !== undefined) throw new LenpredError("give either a prompt argument or --file, not both");
      const maxPromptChars = posInt(o.maxPromptChars, "max-prompt-chars");
      if (prompt === undefined && o.file === undefined) {
        // No prompt and no file: piped stdin is the prompt (`echo … | lenpred predict`); a terminal gets usage.
        const usage = "no prompt: give a prompt argument, pipe it on stdin (or `-`), or --file prompts.jsonl";
        if (process.stdin.isTTY) throw new LenpredError(usage);
        prompt = await readStdinPrompt(maxPromptChars);
        if (prompt === "") throw new LenpredError(usage); // nothing piped (e.g. stdin is /dev/null)
      } else if (prompt === "-") prompt = await readStdinPrompt(maxPromptChars);
      // onnxruntime-node 1.30 crashes (SIGSEGV) creating a session when the process has a command-line argument
      // of ~30k characters or more, so long prompts must come through stdin or --file.
      else if (prompt !== undefined && prompt.length > MAX_ARGV_PROMPT) {
        throw new LenpredError(`the prompt argument is ${prompt.length} characters (limit ${MAX_ARGV_PROMPT}); pass long prompts on stdin with \`lenpred predict -\` or in --file`, { field: "prompt" });
      }
      if (o.out && !o.file) throw new LenpredError("--out goes with --file");
      // Before loading the model: a refused prompt should not wait for onnxruntime.
      if (prompt !== undefined) checkPrompt(prompt, "prompt", {}, maxPromptChars);
      const { LengthPredictor } = await import("../predictor/length-predictor.js");
      const { DEFAULT_MODEL } = await import("../predictor/bundled.js");
      const predictor = await LengthPredictor.load(o.model ?? DEFAULT_MODEL, { quantile, maxPromptChars, batchSize: posInt(o.batchSize, "batch-size"), threads: posInt(o.threads, "threads") });
      try {
        const { toRecord, predictFile, countLines } = await import("../predictor/predict-file.js");
        if (prompt !== undefined) {
          const p = await predictor.predict(prompt);
          const { index: _i, ...rest } = toRecord(0, undefined, p, o.probabilities);
          console.log(JSON.stringify(rest));
          return;
        }
        const total = await countLines(o.file!);
        let bar: import("cli-progress").SingleBar | undefined;
        if (o.progress && process.stderr.isTTY && o.out) {
          const cliProgress = (await import("cli-progress")).default;
          bar = new cliProgress.SingleBar({ format: "predict [{bar}] {value}/{total} | {eta_formatted} left", stream: process.stderr, clearOnComplete: true }, cliProgress.Presets.shades_classic);
          bar.start(total, 0);
        }
        const t0 = Date.now();
        try {
          const n = await predictFile(predictor, o.file!, o.out ? { out: o.out } : { write: (s) => process.stdout.write(s) }, {
            field: o.field, probabilities: o.probabilities, onProgress: (d) => bar?.update(d),
          });
          bar?.stop();
          if (o.out) console.error(`predicted ${n} prompts in ${((Date.now() - t0) / 1000).toFixed(1)} s → ${o.out}`);
        } finally {
          bar?.stop();
        }
      } finally {
        await predictor.dispose();
      }
    });
}
