/**
 * HF-layout model directories:
 *   config.json            HF DistilBertConfig fields + architectures/model_type/id2label/label2id (+ lenpred's head)
 *   model.safetensors      parameters under HF names (F32, or F16 to keep committed models small)
 *   tokenizer.json (+ tokenizer_config.json, special_tokens_map.json, vocab.txt when available)
 *   lenpred.json           ModelMeta (kind "distilbert", buckets, tokenizer spec, head)
 *   onnx/model.onnx        inference graph for onnxruntime-node (see export-onnx.ts), unless `onnx: false`; the
 *                          transformers.js layout, so the directory loads there as is. Directories written before
 *                          (and "shared"-weights ones, whose external data may not leave the graph's directory) have
 *                          ./model.onnx: `onnxFileOf(dir)` finds either.
 *   onnx/model_quantized.onnx  the optional int8 export (`onnxInt8: true`; transformers.js dtype "q8"); older
 *                          directories have ./model.int8.onnx: `onnxInt8FileOf(dir, meta)` finds either.
 * `saveModelDir` replaces the whole directory atomically; `loadModelDir` validates every file and names the
 * file and field that is wrong. It also loads a plain HF DistilBERT checkpoint (e.g. `distilbert-base-uncased`,
 * with MLM head keys and no lenpred.json) when asked to, initialising a missing classification head.
 */
import { copyFile, mkdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { validateScheme, type BucketScheme } from "../data/buckets.js";
import { CONFIG_FILE, LEGACY_ONNX_FILE, MAX_JSON_BYTES, META_FILE, modelFile, ONNX_FILE, ONNX_INT8_FILE, readModelMeta, TOKENIZER_FILE, WEIGHTS_FILE, type ModelMeta } from "../model-dir/index.js";
import { replaceDirAtomic, writeJsonAtomic } from "../util/atomic.js";
import { LenpredError } from "../util/errors.js";
import { checkModelSize, parseConfig, type DistilBertConfig, type MemoryCheck } from "./config.js";
import { labelNames, validateHead } from "./heads.js";
import { initParams, paramSpecs, PREFIX, validateParams } from "./params.js";
import { readSafetensors, readSafetensorsHeader, writeSafetensors, type StoredDtype } from "./safetensors.js";
import type { NamedTensors } from "../engine/tensors.js";
import type { ExportOpset } from "./onnx-opset.js";
import { asObject } from "../util/fields.js";
import { readJsonFile } from "../util/json-file.js";

/** Tokenizer side files copied from the tokenizer.json's directory when present. */
const TOKENIZER_SIDE_FILES = ["tokenizer_config.json", "special_tokens_map.json", "vocab.txt"];

export interface DistilBertMeta extends ModelMeta {
  kind: "distilbert";
  head?: DistilBertConfig["head"];
  quantiles?: number[];
  /** Longest token sequence the model was trained with (inference truncates to it). */
  maxSeqLen?: number;
  weightsDtype?: StoredDtype;
  /** "shared": model.onnx reads its weights from model.safetensors (load it by path). */
  onnxWeights?: "embedded" | "shared";
  /** Opset of the inference export. */
  onnxOpset?: number;
  /** File name of the int8 inference export when one was written (onnx/model_quantized.onnx; model.int8.onnx before 2026-11-30). */
  onnxInt8?: string;
}

export interface SaveModelOptions {
  config: DistilBertConfig;
  params: NamedTensors;
  /** Meta for lenpred.json; `kind` is forced to "distilbert". */
  meta: Omit<ModelMeta, "kind"> & Partial<DistilBertMeta>;
  tokenizerJsonPath?: string;
  /** Storage dtype of model.safetensors (default F32). F16 halves the size for committed models. */
  dtype?: StoredDtype;
  /** Also write model.onnx (default true). */
  onnx?: boolean;
  /** ONNX opset of the export (default 20; 17 for older runtimes and checkers, see export-onnx.ts). */
  opset?: ExportOpset;
  /**
   * How model.onnx gets its weights: "embedded" (default; a self-contained file) or "shared" (ONNX external
   * data pointing into model.safetensors: the directory holds the weights once, about half the size; the
   * ONNX file must then be loaded by path with model.safetensors beside it). "shared" needs F32 or F16.
   */
  onnxWeights?: "embedded" | "shared";
  /**
   * Also write `onnx/model_quantized.onnx` (transformers.js dtype "q8"): the same graph with int8 encoder matmuls
   * (see export-onnx.ts `quantize`), 2–3× faster on CPU, logits within ~1e-2 of model.onnx. Same inputs/outputs; servers may prefer it.
   */
  onnxInt8?: boolean;
}

/** The config.json HF `AutoConfig`/`DistilBertForSequenceClassification.from_pretrained` reads. */
export function hfConfigJson(c: DistilBertConfig, buckets?: BucketScheme, dtype: StoredDtype = "F32"): Record<string, unknown> {
  const names = labelNames(c, buckets);
  return {
    architectures: ["DistilBertForSequenceClassification"],
    model_type: "distilbert",
    activation: c.activation,
    attention_dropout: c.attention_dropout,
    dim: c.dim,
    dropout: c.dropout,
    hidden_dim: c.hidden_dim,
    initializer_range: c.initializer_range,
    max_position_embeddings: c.max_position_embeddings,
    n_heads: c.n_heads,
    n_layers: c.n_layers,
    pad_token_id: c.pad_token_id,
    qa_dropout: 0.1,
    seq_classif_dropout: c.seq_classif_dropout,
    sinusoidal_pos_embds: false,
    tie_weights_: true,
    vocab_size: c.vocab_size,
    id2label: Object.fromEntries(names.map((n, i) => [String(i), n])),
    label2id: Object.fromEntries(names.map((n, i) => [n, i])),
    problem_type: c.head === "classification" ? "single_label_classification" : "regression",
    torch_dtype: dtype === "F32" ? "float32" : dtype === "F16" ? "float16" : "bfloat16",
    // lenpred's own fields (HF keeps unknown config keys as attributes).
    head: c.head,
    ...(c.quantiles ? { quantiles: c.quantiles } : {}),
  };
}

export async function saveModelDir(dir: string, opts: SaveModelOptions): Promise<void> {
  const { config, params } = opts;
  const dtype = opts.dtype ?? "F32";
  validateHead(config);
  validateParams(config, params);
  const buckets = validateScheme(opts.meta.buckets);
  if (config.head === "classification" && buckets.edges.length !== config.num_labels) {
    throw new LenpredError(`${buckets.edges.length} buckets but the config has ${config.num_labels} labels`, { field: "buckets" });
  }
  if (opts.onnxWeights === "shared" && dtype === "BF16") {
    throw new LenpredError("onnxWeights 'shared' needs F32 or F16 weights (ONNX float16/float32), got BF16", { field: "dtype" });
  }
  const meta: DistilBertMeta = {
    ...opts.meta,
    kind: "distilbert",
    head: config.head,
    ...(config.quantiles ? { quantiles: config.quantiles } : {}),
    weightsDtype: dtype,
    ...(opts.onnx ?? true ? { onnxWeights: opts.onnxWeights ?? "embedded", onnxOpset: opts.opset ?? 20 } : {}),
    ...((opts.onnx ?? true) && opts.onnxInt8 ? { onnxInt8: ONNX_INT8_FILE } : {}),
  } as DistilBertMeta;
  await replaceDirAtomic(dir, async (tmp) => {
    await writeJsonAtomic(join(tmp, CONFIG_FILE), hfConfigJson(config, meta.buckets, dtype));
    await writeSafetensors(join(tmp, WEIGHTS_FILE), params, { dtype, metadata: { format: "pt" } });
    if (opts.tokenizerJsonPath) await copyTokenizer(opts.tokenizerJsonPath, tmp, config);
    if (opts.onnx ?? true) {
      const { exportInferenceOnnx } = await import("./export-onnx.js");
      // The ONNX graph gets the weights as stored, so both files give the same logits; F16 weights stay
      // float16 in the ONNX file too (half the size; exact, as every F16 value is a float32).
      const stored = dtype === "F32" ? params : (await readSafetensors(join(tmp, WEIGHTS_FILE))).tensors;
      const weights = dtype === "F16" ? "float16" : "float32";
      const external = opts.onnxWeights === "shared" ? { location: WEIGHTS_FILE, header: await readSafetensorsHeader(join(tmp, WEIGHTS_FILE)) } : undefined;
      // Shared weights stay flat: ORT refuses external data outside the graph file's directory.
      const onnxFile = external ? LEGACY_ONNX_FILE : ONNX_FILE;
      await mkdir(dirname(join(tmp, onnxFile)), { recursive: true });
      await exportInferenceOnnx(config, stored, join(tmp, onnxFile), { weights, external, opset: opts.opset });
      if (opts.onnxInt8) {
        await mkdir(dirname(join(tmp, ONNX_INT8_FILE)), { recursive: true });
        await exportInferenceOnnx(config, stored, join(tmp, ONNX_INT8_FILE), { weights, quantize: "int8" });
      }
    }
    await writeJsonAtomic(join(tmp, META_FILE), meta);
  });
}

async function copyTokenizer(tokenizerJsonPath: string, tmp: string, c: DistilBertConfig): Promise<void> {
  try {
    await copyFile(tokenizerJsonPath, join(tmp, TOKENIZER_FILE));
  } catch (e) {
    throw new LenpredError(`cannot copy tokenizer (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { file: tokenizerJsonPath });
  }
  const src = dirname(tokenizerJsonPath);
  const copied = new Set<string>();
  for (const f of TOKENIZER_SIDE_FILES) {
    try {
      await copyFile(join(src, f), join(tmp, f));
      copied.add(f);
    } catch {
      // optional
    }
  }
  if (!copied.has("tokenizer_config.json")) {
    // HF AutoTokenizer needs tokenizer_config.json beside tokenizer.json; describe the BERT-uncased family.
    await writeJsonAtomic(join(tmp, "tokenizer_config.json"), {
      tokenizer_class: "DistilBertTokenizer",
      do_lower_case: true,
      model_max_length: c.max_position_embeddings,
      cls_token: "[CLS]", sep_token: "[SEP]", pad_token: "[PAD]", unk_token: "[UNK]", mask_token: "[MASK]",
      clean_up_tokenization_spaces: true,
    });
  }
}

export interface LoadModelOptions {
  /** Require lenpred.json (default true). Without it `meta` is undefined. */
  requireMeta?: boolean;
  /**
   * For plain HF checkpoints without a sequence-classification head (e.g. `distilbert-base-uncased`):
   * initialise missing pre_classifier/classifier parameters from this seed instead of failing.
   */
  initMissingHeadSeed?: number;
  /** Override config fields (e.g. num_labels/head when fine-tuning a pretrained encoder). */
  configOverrides?: Partial<DistilBertConfig>;
  /** Memory cap/training shape for the size check done before loading (default: load, cap = physical memory). */
  memory?: Omit<MemoryCheck, "file">;
}

export interface LoadedModel {
  config: DistilBertConfig;
  params: NamedTensors;
  meta: DistilBertMeta;
  /** Checkpoint tensors that are not DistilBertForSequenceClassification parameters (e.g. MLM head). */
  unusedKeys: string[];
  /** Parameters initialised because the checkpoint lacked them. */
  initialisedKeys: string[];
}

export async function loadModelDir(dir: string, opts: LoadModelOptions & { requireMeta: false }): Promise<Omit<LoadedModel, "meta"> & { meta?: DistilBertMeta }>;
export async function loadModelDir(dir: string, opts?: LoadModelOptions): Promise<LoadedModel>;
export async function loadModelDir(dir: string, opts: LoadModelOptions = {}): Promise<Omit<LoadedModel, "meta"> & { meta?: DistilBertMeta }> {
  try {
    if (!(await stat(dir)).isDirectory()) throw new LenpredError("not a directory", { file: dir });
  } catch (e) {
    if (e instanceof LenpredError) throw e;
    throw new LenpredError("model directory not found", { file: dir });
  }
  const configFile = modelFile(dir, CONFIG_FILE, { missing: "missing (not an HF model directory)", maxBytes: MAX_JSON_BYTES });
  const raw = asObject(await readJsonFile(configFile), { file: configFile });
  if (raw.model_type !== undefined && raw.model_type !== "distilbert") {
    throw new LenpredError(`model_type ${JSON.stringify(raw.model_type)} is not "distilbert"`, { file: configFile, field: "model_type" });
  }
  const config = parseConfig({ ...raw, ...opts.configOverrides }, configFile);
  validateHead(config, configFile);
  // Before anything is allocated: a config.json with n_layers 1e6 must not build 16M parameter specs.
  checkModelSize(config, { file: configFile, ...opts.memory });

  let meta: DistilBertMeta | undefined;
  if (opts.requireMeta ?? true) {
    meta = (await readModelMeta(dir)) as DistilBertMeta;
    const metaFile = join(dir, META_FILE);
    if (meta.kind !== "distilbert") throw new LenpredError(`kind '${meta.kind}' is not "distilbert"`, { file: metaFile, field: "kind" });
    if (config.head === "classification" && meta.buckets.edges.length !== config.num_labels) {
      throw new LenpredError(`${meta.buckets.edges.length} buckets but config.json has ${config.num_labels} labels`, { file: metaFile, field: "buckets" });
    }
  }

  const weightsFile = modelFile(dir, WEIGHTS_FILE, { missing: "file not found" });
  const specs = paramSpecs(config);
  const expected = new Set(specs.map((s) => s.name));
  // Accept bare DistilBertModel keys ("embeddings.…", "transformer.…") as well as prefixed ones.
  const canonical = (name: string) => (name.startsWith("embeddings.") || name.startsWith("transformer.") ? PREFIX + name : name);
  // Every tensor present with its shape, from the header alone, before any weight is read.
  const stored = new Map((await readSafetensorsHeader(weightsFile)).entries.map((e) => [canonical(e.name), e.shape]));
  const mayInit = (k: string) => opts.initMissingHeadSeed !== undefined && (k.startsWith("pre_classifier.") || k.startsWith("classifier."));
  for (const spec of specs) {
    const shape = stored.get(spec.name);
    if (!shape && mayInit(spec.name)) continue;
    if (!shape) throw new LenpredError(`missing parameter (expected shape ${JSON.stringify(spec.shape)}); config.json and the weights disagree`, { file: weightsFile, field: spec.name });
    if (shape.length !== spec.shape.length || shape.some((d, i) => d !== spec.shape[i])) {
      throw new LenpredError(`shape ${JSON.stringify(shape)} does not match the config's ${JSON.stringify(spec.shape)}`, { file: weightsFile, field: spec.name });
    }
  }
  const read = await readSafetensors(weightsFile, { skipNonFloat: true });
  const params: NamedTensors = new Map();
  const unusedKeys: string[] = [...read.skipped];
  for (const [name, t] of read.tensors) {
    const key = canonical(name);
    if (expected.has(key)) params.set(key, t);
    else unusedKeys.push(name);
  }
  const initialisedKeys: string[] = [];
  if (opts.initMissingHeadSeed !== undefined) {
    const missingHead = [...expected].filter((k) => !params.has(k) && (k.startsWith("pre_classifier.") || k.startsWith("classifier.")));
    if (missingHead.length) {
      const init = initParams(config, opts.initMissingHeadSeed, (n) => missingHead.includes(n));
      for (const [k, t] of init) { params.set(k, t); initialisedKeys.push(k); }
    }
  }
  validateParams(config, params, weightsFile);
  return { config, params, meta, unusedKeys, initialisedKeys };
}
