/** `lenpred train`: train a DistilBERT length predictor on prepared data (from scratch or from --init). */
import { Command, Option } from "commander";
import { HEAD_KINDS } from "../model/config.js";
import { DEFAULTS, MONITORS, WEIGHT_DTYPES } from "../train/options.js";
import { numberOption } from "../util/number-option.js";

const num = (name: string) => numberOption(`--${name}`);

export function register(program: Command): void {
  program
    .command("train")
    .description("train a DistilBERT output-length predictor on prepared data (best checkpoint → a model directory)")
    .option("--data <dir>", "prepared data directory (from `lenpred prepare`): train.jsonl, val.jsonl, scheme.json")
    .requiredOption("--out <dir>", "model directory to write (also holds checkpoint/ while training)")
    .option("--config <name|path>", "model size: tiny (2×128), small (4×256), base (6×768 = DistilBERT) or a config.json", DEFAULTS.config)
    .option("--init <dir|repo>", "start from pretrained HF DistilBERT weights: a directory (config.json + model.safetensors) or a Hugging Face hub id (distilbert-base-uncased, org/name[@rev], hf:org/name), fetched into the hub cache (HF_ENDPOINT, HF_TOKEN, HF_HOME/HF_HUB_CACHE, HF_HUB_OFFLINE=1)")
    .option("--tokenizer <spec>", "input tokenizer (default: the --init directory's, else bundled bert-base-uncased)")
    .addOption(new Option("--head <kind>", "output head").choices(HEAD_KINDS).default(DEFAULTS.head))
    .option("--quantiles <list>", "levels of the quantile head, comma-separated", DEFAULTS.quantiles.join(","))
    .option("--epochs <n>", "epochs", num("epochs"), DEFAULTS.epochs)
    .option("--lr <x>", "peak learning rate (AdamW)", num("lr"), DEFAULTS.lr)
    .option("--warmup <x>", "linear warmup: a fraction of all steps if < 1, else steps", num("warmup"), DEFAULTS.warmup)
    .option("--weight-decay <x>", "AdamW decoupled weight decay", num("weight-decay"), DEFAULTS.weightDecay)
    .option("--batch-size <n>", "prompts per step (length-grouped, dynamically padded)", num("batch-size"), DEFAULTS.batchSize)
    .option("--max-length <n>", "maximum input tokens incl. [CLS]/[SEP]; longer prompts are truncated", num("max-length"), DEFAULTS.maxLength)
    .option("--max-grad-norm <x>", "clip the global gradient norm (0 = off)", num("max-grad-norm"), DEFAULTS.maxGradNorm)
    .option("--seed <n>", "seed for initialisation, shuffling and dropout", num("seed"), DEFAULTS.seed)
    .option("--patience <n>", "early stopping: epochs without improvement before stopping (0 = off)", num("patience"), DEFAULTS.patience)
    .addOption(new Option("--monitor <metric>", "validation metric that picks the best checkpoint").choices(MONITORS).default(DEFAULTS.monitor))
    .option("--max-train-records <n>", "use only the first N training records (quick runs)", num("max-train-records"))
    .option("--max-val-records <n>", "use only the first N validation records", num("max-val-records"))
    .option("--checkpoint-minutes <x>", "also checkpoint mid-epoch this often (bounds what a crash loses; 0 = epoch ends only)", num("checkpoint-minutes"), DEFAULTS.checkpointMinutes)
    .option("--keep-checkpoint", "keep checkpoint/ (optimizer state) in the finished model directory", DEFAULTS.keepCheckpoint)
    .addOption(new Option("--dtype <dtype>", "storage dtype of the saved weights").choices(WEIGHT_DTYPES).default(DEFAULTS.dtype))
    .addOption(new Option("--opset <n>", "ONNX opset of onnx/model.onnx: 20 (default, Gelu op) or 17 (Gelu decomposed; older runtimes, ONNX 1.12 checkers)").choices(["17", "20"]))
    .option("--threads <n>", "compute threads", num("threads"), DEFAULTS.threads)
    .option("--max-memory <GB>", "refuse a model whose estimated training memory exceeds this (default: this machine's RAM)", num("max-memory"))
    .option("--resume", "continue the interrupted run in --out exactly (options come from its checkpoint)", false)
    .option("--overwrite", "replace an existing --out directory", false)
    .option("--no-progress", "no progress bar")
    .addHelpText("after", `
Every epoch prints train loss, validation loss, bucket accuracy, MAE (tokens) and under-allocation; the best
epoch (by --monitor) is what --out holds. Ctrl-C stops after the current step and leaves a resumable
checkpoint (exit 130); \`lenpred train --resume --out DIR\` continues it exactly: same batch order, schedule
step, AdamW state and dropout masks (hashed from --seed and the step), so the final weights are
bit-identical to an uninterrupted run's (as are two runs with the same options), for any --threads value kept
the same on the same CPU kind; resuming with another --threads continues correctly but rounds differently.
Saves are atomic directory swaps, so even kill -9 leaves either the previous or the new state.

Examples:
  lenpred train --data /tmp/alpaca-s3 --out /tmp/model --config tiny --epochs 3 --lr 5e-4
  lenpred train --data /tmp/alpaca-s3 --out /tmp/model --init distilbert-base-uncased     # pretrained, from the hub
  lenpred train --data /tmp/alpaca-s3 --out /tmp/model --init ./distilbert-base-uncased   # … or a local copy
  lenpred train --resume --out /tmp/model
See docs/train.md.`)
    .action(async (raw: Record<string, unknown>, cmd: Command) => {
      const { runTrainCommand } = await import("../train/command.js");
      const explicit = new Set(Object.keys(raw).filter((k) => cmd.getOptionValueSource(k) === "cli"));
      process.exitCode = await runTrainCommand(raw, explicit);
    });
}
