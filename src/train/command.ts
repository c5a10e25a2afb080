/** The body of `lenpred train` (kept out of the command module so `lenpred --help` stays light). */
import { rm } from "node:fs/promises";
import type { Tokenizer } from "../tokenizers/types.js";
import { LenpredError } from "../util/errors.js";
import { loadTrainingData } from "./data.js";
import { createTrainable, inputTokenizerSpec, resolveModel, writeDistilBertModel } from "./train-distilbert.js";
import { interruptSignal } from "./interrupt.js";
import { train, type TrainHooks } from "./loop.js";
import { DEFAULTS, RUN_DEFINING, validateOptions, type TrainOptions } from "./options.js";
import { TrainProgress, formatDuration } from "./progress.js";
import { exists, hasCheckpoint, loadRun, recoverOutDir } from "./run-dir.js";
import type { EpochRecord } from "./run-state.js";

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

export function formatEpoch(r: EpochRecord, epochs: number): string {
  return `epoch ${r.epoch}/${epochs}: train_loss ${r.trainLoss.toFixed(4)} val_loss ${r.valLoss.toFixed(4)} ` +
    `acc ${pct(r.accuracy)} mae ${r.mae.toFixed(1)} acc50 ${pct(r.acc50)} under ${pct(r.underAllocation)} ` +
    `${formatDuration(r.seconds)} ${Math.round(r.tokensPerSecond)} tok/s${r.best ? "  *best*" : ""}`;
}

function optionsFromCli(raw: Record<string, unknown>): TrainOptions {
  const quantiles = String(raw.quantiles ?? DEFAULTS.quantiles.join(",")).split(",").map((s) => Number(s.trim()));
  const o: TrainOptions = {
    ...DEFAULTS,
    data: raw.data as string, out: raw.out as string, config: raw.config as string, init: raw.init as string | undefined,
    tokenizer: raw.tokenizer as string | undefined, head: raw.head as TrainOptions["head"], quantiles,
    epochs: raw.epochs as number, lr: raw.lr as number, warmup: raw.warmup as number, weightDecay: raw.weightDecay as number,
    batchSize: raw.batchSize as number, maxLength: raw.maxLength as number, maxGradNorm: raw.maxGradNorm as number,
    seed: raw.seed as number, patience: raw.patience as number, monitor: raw.monitor as TrainOptions["monitor"],
    maxTrainRecords: raw.maxTrainRecords as number | undefined, maxValRecords: raw.maxValRecords as number | undefined,
    checkpointMinutes: raw.checkpointMinutes as number, keepCheckpoint: Boolean(raw.keepCheckpoint),
    dtype: raw.dtype as TrainOptions["dtype"], threads: raw.threads as number,
    ...(raw.maxMemory !== undefined ? { maxMemory: raw.maxMemory as number } : {}),
    ...(raw.opset !== undefined ? { opset: Number(raw.opset) as 17 | 20 } : {}),
  };
  return o;
}

/** CLI option name → TrainOptions key (they match except for quantiles' string form). */
const CHANGEABLE_ON_RESUME: (keyof TrainOptions)[] = ["data", "patience", "monitor", "checkpointMinutes", "keepCheckpoint", "threads", "maxMemory", "opset"];

export async function runTrainCommand(raw: Record<string, unknown>, explicit: Set<string>): Promise<number> {
  const out = raw.out as string;
  await recoverOutDir(out);
  const cli = optionsFromCli(raw);
  let opts: TrainOptions;
  let resume: Awaited<ReturnType<typeof loadRun>> | undefined;
  if (raw.resume) {
    resume = await loadRun(out);
    opts = { ...resume.state.options, out };
    for (const k of explicit) {
      const key = k as keyof TrainOptions;
      if (k === "resume" || k === "out" || k === "progress" || k === "overwrite") continue;
      if (CHANGEABLE_ON_RESUME.includes(key)) {
        (opts as unknown as Record<string, unknown>)[key] = cli[key];
      } else if (RUN_DEFINING.includes(key) || key === "epochs" || key === "dtype") {
        if (JSON.stringify(cli[key]) !== JSON.stringify(opts[key])) {
          throw new LenpredError(`--resume continues the run with its own settings; --${k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())} ${JSON.stringify(cli[key])} differs from the checkpoint's ${JSON.stringify(opts[key])}`);
        }
      }
    }
    if (resume.state.status === "completed" || resume.state.status === "early-stopped") {
      throw new LenpredError(`the run in ${out} already finished (${resume.state.status}); nothing to resume`);
    }
  } else {
    if (!cli.data) throw new LenpredError("--data is required (a prepared data directory) unless --resume");
    opts = cli;
    if (await hasCheckpoint(out)) {
      if (!raw.overwrite) throw new LenpredError(`${out} holds an unfinished run: continue it with --resume, or start over with --overwrite`);
    } else if ((await exists(out)) && !raw.overwrite) {
      const { readdir } = await import("node:fs/promises");
      if ((await readdir(out)).length) throw new LenpredError(`${out} exists and is not empty: choose another --out or pass --overwrite`);
    }
    if (raw.overwrite) await rm(out, { recursive: true, force: true });
  }
  validateOptions(opts);

  const { loadTokenizer, tokenizerJsonPath } = await import("../tokenizers/index.js");
  // --init may name a hub repository (distilbert-base-uncased, org/name[@rev], hf:org/name): fetch it into the hub
  // cache like from_pretrained; the options (checkpoint, model card) keep what the user typed.
  const { resolveInitDir } = await import("./init-source.js");
  const local: TrainOptions = opts.init ? { ...opts, init: await resolveInitDir(opts.init) } : opts;
  const tokSpec = inputTokenizerSpec(local);
  const tok: Tokenizer = await loadTokenizer(tokSpec);
  if (tok.kind !== "huggingface") throw new LenpredError(`the input tokenizer must be a WordPiece/HF tokenizer.json, got '${tokSpec}' (${tok.kind})`, { field: "--tokenizer" });
  const t0 = Date.now();
  const data = await loadTrainingData(opts.data, tok, {
    maxLength: opts.maxLength, maxTrainRecords: opts.maxTrainRecords, maxValRecords: opts.maxValRecords,
  });
  const model = await resolveModel(local, data, tok);
  const c = model.config;
  console.log(`data: ${data.train.length} train / ${data.val.length} val records from ${opts.data} (${data.scheme.edges.length} buckets, ` +
    `${data.truncated.train + data.truncated.val} prompts truncated to ${opts.maxLength} tokens; encoded in ${formatDuration((Date.now() - t0) / 1000)})`);
  console.log(`model: ${model.source}: ${c.n_layers} layers × dim ${c.dim}, ${c.n_heads} heads, ffn ${c.hidden_dim}, ${opts.head} head (${c.num_labels} outputs)`);
  console.log(`training: ${opts.epochs} epochs × ${Math.ceil(data.train.length / opts.batchSize)} steps, batch ${opts.batchSize}, lr ${opts.lr}, ` +
    `warmup ${opts.warmup}, weight decay ${opts.weightDecay}, seed ${opts.seed}${resume ? `; resuming at epoch ${resume.state.epoch + 1}, step ${resume.state.globalStep}` : ""}`);

  const progress = new TrainProgress(raw.progress !== false);
  // Until the model exists there is nothing to checkpoint: a signal while it is built (allocation, onnxruntime
  // session) ends the run at once instead of after the first step.
  let modelReady = false;
  const intr = interruptSignal(() => {
    progress.stop();
    if (!modelReady) {
      process.stderr.write("\nlenpred: interrupted while building the model; nothing was trained\n");
      process.exit(130);
    }
    process.stderr.write("\nlenpred: interrupt: finishing the current step and writing a resumable checkpoint (Ctrl-C again to quit now)\n");
  });
  const tokJson = await tokenizerJsonPath(tokSpec);
  const hooks: TrainHooks = {
    signal: intr.signal,
    createModel: async () => {
      const m = await createTrainable(model, opts);
      modelReady = true;
      return m;
    },
    writeModel: (dir, m, info) => writeDistilBertModel(dir, m, info, { config: c, data, tokenizerJsonPath: tokJson, options: opts }),
    onEpochStart: (e, n, at) => progress.epochStart(e, opts.epochs, n, at),
    onStep: (p) => progress.step(p),
    onValidation: (d, n) => progress.validating(d, n),
    onEpoch: (r) => { progress.stop(); console.log(formatEpoch(r, opts.epochs)); },
  };
  try {
    const res = await train(opts, data, hooks, resume);
    progress.stop();
    const best = res.state.best;
    if (res.status === "interrupted") {
      console.log(`interrupted at epoch ${res.state.epoch + 1}, step ${res.state.globalStep}/${res.state.totalSteps}; resume with: lenpred train --resume --out ${out}`);
      return 130;
    }
    console.log(`${res.status === "early-stopped" ? "stopped early (no improvement for " + opts.patience + " epochs)" : "done"} in ${formatDuration(res.state.elapsedSeconds)}; ` +
      `best epoch ${best?.epoch}: acc ${best ? pct(best.metrics.accuracy) : "?"}, mae ${best?.metrics.mae.toFixed(1)}, under ${best ? pct(best.metrics.underAllocation) : "?"} → ${out}`);
    return 0;
  } finally {
    intr.dispose();
    progress.stop();
  }
}
