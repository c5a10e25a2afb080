/**
 * The model card (`README.md`) every `lenpred train` output directory gets: what the model predicts, how to
 * use it, architecture and labels, the exact command and hyperparameters, and the per-epoch validation
 * history. Written with each save from the run state, so it always describes the weights beside it.
 * Test-split results and comparisons belong below the generated part (see docs/train.md).
 */
import { basename } from "node:path";
import type { EpochRecord, RunState } from "./run-state.js";
import type { TrainOptions } from "./options.js";

const pct = (x: number) => `${(100 * x).toFixed(2)} %`;

/** The `lenpred train` command line that reproduces a run. */
export function commandLine(o: TrainOptions): string {
  const parts = ["lenpred train", `--data ${o.data}`, `--out ${o.out}`];
  if (o.init) parts.push(`--init ${o.init}`);
  else parts.push(`--config ${o.config}`);
  if (o.tokenizer) parts.push(`--tokenizer ${o.tokenizer}`);
  if (o.head !== "classification") parts.push(`--head ${o.head}`);
  if (o.head === "quantile") parts.push(`--quantiles ${o.quantiles.join(",")}`);
  parts.push(`--epochs ${o.epochs}`, `--lr ${o.lr}`, `--batch-size ${o.batchSize}`, `--max-length ${o.maxLength}`, `--seed ${o.seed}`);
  if (o.warmup) parts.push(`--warmup ${o.warmup}`);
  if (o.weightDecay) parts.push(`--weight-decay ${o.weightDecay}`);
  if (o.maxGradNorm !== 1) parts.push(`--max-grad-norm ${o.maxGradNorm}`);
  if (o.patience !== 3) parts.push(`--patience ${o.patience}`);
  if (o.monitor !== "val_loss") parts.push(`--monitor ${o.monitor}`);
  if (o.maxTrainRecords) parts.push(`--max-train-records ${o.maxTrainRecords}`);
  if (o.maxValRecords) parts.push(`--max-val-records ${o.maxValRecords}`);
  if (o.dtype !== "F32") parts.push(`--dtype ${o.dtype}`);
  if (o.opset !== undefined && o.opset !== 20) parts.push(`--opset ${o.opset}`);
  return parts.join(" ");
}

function historyTable(h: readonly EpochRecord[]): string {
  const rows = h.map((r) => `| ${r.epoch}${r.best ? " *" : ""} | ${r.trainLoss.toFixed(4)} | ${r.valLoss.toFixed(4)} | ${pct(r.accuracy)} | ${r.mae.toFixed(1)} | ${pct(r.acc50)} | ${pct(r.acc100)} | ${pct(r.underAllocation)} | ${Math.round(r.seconds)} | ${Math.round(r.tokensPerSecond)} |`);
  return ["| epoch | train loss | val loss | bucket acc | MAE | Acc-50 | Acc-100 | under-alloc | seconds | tokens/s |", "|---|---|---|---|---|---|---|---|---|---|", ...rows].join("\n");
}

export function renderModelCard(s: RunState, meta?: Record<string, unknown>, config?: Record<string, unknown>): string {
  const o = s.options;
  const name = basename(o.out);
  const [nTrain, nVal] = s.dataFingerprint.split(":");
  const buckets = (meta?.buckets as { edges?: number[] } | undefined)?.edges;
  const best = s.best;
  const lines: string[] = [];
  lines.push(`# ${name}: output-length predictor (lenpred)`, "");
  lines.push("Predicts, from the prompt alone, how many tokens an LLM will answer with — the S³ recipe: a DistilBERT",
    "sequence classifier over output-length buckets, used to reserve KV cache before generation.", "");
  lines.push("```sh", `lenpred predict --model ${o.out} "Write a haiku about the sea."`, "```", "",
    "```ts", `const p = await LengthPredictor.load("${o.out}");`, `await p.predictLength(prompt); // tokens to reserve`, "```", "");
  lines.push("## Model", "");
  if (config) {
    lines.push(`- DistilBertForSequenceClassification: ${config.n_layers} layers, dim ${config.dim}, ${config.n_heads} heads, FFN ${config.hidden_dim}, vocabulary ${config.vocab_size}, ${o.init ? `initialised from ${o.init}` : "trained from scratch"}`);
  }
  lines.push(`- head: ${o.head}${o.head === "quantile" ? ` (levels ${o.quantiles.join(", ")})` : o.head === "regression" ? " (log(1 + output tokens))" : ""}`);
  if (buckets) lines.push(`- buckets (upper edges, tokens): ${buckets.join(", ")}`);
  if (meta) {
    lines.push(`- labels: \`${String(meta.label ?? "?")}\`, answer tokens counted with \`${String(meta.tokenizer)}\`${meta.specialTokens ? " including special tokens" : ""}`);
    if (meta.template) lines.push(`- prompt template: \`${String(meta.template)}\``);
  }
  lines.push(`- input: at most ${o.maxLength} tokens ([CLS] … [SEP]; longer prompts are truncated)`, `- weights: ${o.dtype}`, "");
  lines.push("## Training", "");
  lines.push("```sh", commandLine(o), "```", "");
  lines.push(`- data: ${o.data} (${nTrain} train / ${nVal} validation records)`);
  lines.push(`- AdamW, lr ${o.lr} (linear warmup ${o.warmup}, linear decay), weight decay ${o.weightDecay}, batch ${o.batchSize} (length-grouped, dynamic padding), grad-norm clip ${o.maxGradNorm}, seed ${o.seed}`);
  lines.push(`- status: ${s.status}, ${s.history.length} of ${o.epochs} epochs, ${(s.elapsedSeconds / 60).toFixed(1)} min on this machine`);
  if (best) {
    const m = best.metrics;
    lines.push(`- best epoch (by ${o.monitor}): ${best.epoch} — validation bucket accuracy ${pct(m.accuracy)}, MAE ${m.mae.toFixed(1)} tokens, Acc-50 ${pct(m.acc50)}, Acc-100 ${pct(m.acc100)}, under-allocation ${pct(m.underAllocation)}`);
  }
  lines.push("", "## Validation history", "", historyTable(s.history), "", "(* = checkpoint kept)", "");
  lines.push("## Limitations", "",
    "- Learns the length distribution of its training data: the labelling model, decoding settings and prompt style",
    "  (e.g. single-turn Alpaca instructions). Other models, system prompts or chat templates shift lengths.",
    "- Bucket predictions reserve the bucket's upper edge; answers longer than the last edge fall into the last bucket.",
    "- Use `quantile` mode (`--quantile 0.9`) to trade more reserved tokens for fewer under-allocations.", "");
  return lines.join("\n");
}
