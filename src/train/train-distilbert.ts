/**
 * Wiring the training loop to DistilBERT: resolve the configuration (`--config` preset/path or `--init`
 * checkpoint) against the data (bucket count → num_labels) and the input tokenizer (vocab size, pad id),
 * create the engine's trainable model, and write the best checkpoint as an HF-layout model directory with
 * model.onnx and lenpred.json.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { TOKENIZER_FILE } from "../model-dir/index.js";
import { checkModelSize, PRESETS, parseConfig, type DistilBertConfig } from "../model/config.js";
import { headOutputs } from "../model/heads.js";
import type { NamedTensors } from "../engine/tensors.js";
import type { Tokenizer } from "../tokenizers/types.js";
import { LenpredError } from "../util/errors.js";
import type { LoadedTrainingData } from "./data.js";
import type { BestModelInfo } from "./loop.js";
import { memoryCheck, type TrainOptions } from "./options.js";
import type { TrainableModel } from "../model/trainable.js";
import { readJsonFile } from "../util/json-file.js";

export interface ResolvedModel {
  config: DistilBertConfig;
  /** Pretrained parameters (from --init); undefined = initialise from the seed. */
  initParams?: NamedTensors;
  /** Where the config came from, for logs. */
  source: string;
}

/** The input tokenizer spec: --tokenizer, else the --init directory's tokenizer.json, else bundled BERT uncased. */
export function inputTokenizerSpec(o: Pick<TrainOptions, "tokenizer" | "init">): string {
  if (o.tokenizer) return o.tokenizer;
  if (o.init && existsSync(join(o.init, TOKENIZER_FILE))) return join(o.init, TOKENIZER_FILE);
  return "bert-base-uncased";
}

export async function resolveModel(o: TrainOptions, data: LoadedTrainingData, tok: Tokenizer): Promise<ResolvedModel> {
  const head = { head: o.head, num_labels: headOutputs(o.head, data.scheme, o.quantiles), ...(o.head === "quantile" ? { quantiles: o.quantiles } : {}) };
  let config: DistilBertConfig;
  let initParams: NamedTensors | undefined;
  let source: string;
  if (o.init) {
    const { loadModelDir } = await import("../model/checkpoint.js");
    const loaded = await loadModelDir(o.init, { requireMeta: false, initMissingHeadSeed: o.seed, configOverrides: head, memory: memoryCheck(o) });
    config = loaded.config;
    initParams = loaded.params;
    source = `${o.init} (pretrained${loaded.initialisedKeys.length ? `, new head: ${loaded.initialisedKeys.length} tensors` : ""})`;
  } else if (PRESETS[o.config]) {
    config = { ...PRESETS[o.config]!, ...head, vocab_size: tok.vocabSize, pad_token_id: tok.special.pad ?? 0 };
    source = `preset '${o.config}'`;
  } else if (existsSync(o.config)) {
    const raw = await readJsonFile(o.config);
    config = parseConfig({ vocab_size: tok.vocabSize, pad_token_id: tok.special.pad ?? 0, ...(raw as object), ...head }, o.config);
    source = o.config;
  } else {
    throw new LenpredError(`unknown --config '${o.config}': expected ${Object.keys(PRESETS).join(", ")} or a config.json path`, { field: "--config" });
  }
  checkModelSize(config, { ...memoryCheck(o), file: PRESETS[o.config] || o.init ? undefined : o.config });
  if (config.vocab_size < tok.vocabSize) {
    throw new LenpredError(`the model's vocab_size ${config.vocab_size} is smaller than the tokenizer's ${tok.vocabSize}`, { field: "vocab_size" });
  }
  if (o.maxLength > config.max_position_embeddings) {
    throw new LenpredError(`--max-length ${o.maxLength} exceeds the model's max_position_embeddings ${config.max_position_embeddings}`, { field: "--max-length" });
  }
  return { config, initParams, source };
}

/** The engine's trainable DistilBERT (ONNX training graph on onnxruntime), seeded from the options. */
export async function createTrainable(m: ResolvedModel, o: TrainOptions): Promise<TrainableModel> {
  const { DistilBertModel } = await import("../model/distilbert-trainable.js");
  return DistilBertModel.create(m.config, { params: m.initParams, seed: o.seed, session: { threads: o.threads } });
}

export async function writeDistilBertModel(
  dir: string, model: TrainableModel, info: BestModelInfo,
  ctx: { config: DistilBertConfig; data: LoadedTrainingData; tokenizerJsonPath?: string; options: TrainOptions },
): Promise<void> {
  const { saveModelDir } = await import("../model/checkpoint.js");
  const p = ctx.data.prepared;
  await saveModelDir(dir, {
    config: ctx.config,
    params: model.parameters(),
    tokenizerJsonPath: ctx.tokenizerJsonPath,
    dtype: ctx.options.dtype,
    opset: ctx.options.opset,
    meta: {
      buckets: ctx.data.scheme,
      tokenizer: p.tokenizer,
      maxSeqLen: info.maxLength,
      ...(info.metrics.residualStd !== undefined ? { residualStd: info.metrics.residualStd } : {}),
      ...(info.head.bucketMeans ? { bucketMeans: info.head.bucketMeans.map((x) => Math.round(x * 1000) / 1000) } : {}),
      label: p.label,
      template: p.template,
      specialTokens: p.specialTokens,
      trainedBy: "lenpred train",
      bestEpoch: info.epoch,
      validation: info.metrics,
    },
  });
}
