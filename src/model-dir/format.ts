/**
 * The model-directory format, owned here and nowhere else: the file names, `lenpred.json` (`ModelMeta`) and
 * its reading/validation, and the ONNX graph's input/output names shared by the exporter and the reader.
 * Everything below predictor/, baselines/ and model/ so that each of them can import it without a cycle.
 *
 *   lenpred.json           ModelMeta: `kind` (which loader opens the directory), buckets, tokenizer spec
 *   config.json            HF DistilBertConfig (distilbert kind)
 *   model.safetensors      parameters under HF names (distilbert kind)
 *   tokenizer.json         the input tokenizer (distilbert kind)
 *   onnx/model.onnx        inference graph (transformers.js layout); ./model.onnx in older/shared-weights dirs
 *   onnx/model_quantized.onnx  optional int8 export (transformers.js dtype "q8"); ./model.int8.onnx in older dirs
 */
import { lstatSync } from "node:fs";
import { join } from "node:path";
import { validateScheme, type BucketScheme } from "../data/buckets.js";
import { LenpredError } from "../util/errors.js";
import { asObject } from "../util/fields.js";
import { readJsonFile } from "../util/json-file.js";
import { modelFile } from "./confine.js";

export const META_FILE = "lenpred.json";
export const CONFIG_FILE = "config.json";
export const WEIGHTS_FILE = "model.safetensors";
export const TOKENIZER_FILE = "tokenizer.json";
/** Where the inference export goes: transformers.js looks for `onnx/model.onnx` (its fp32 dtype). */
export const ONNX_FILE = "onnx/model.onnx";
/** The flat location: older model directories, and shared-weights exports (external data beside the graph). */
export const LEGACY_ONNX_FILE = "model.onnx";
/** Where the optional int8 export goes: transformers.js looks for `onnx/model_quantized.onnx` (its dtype "q8"). */
export const ONNX_INT8_FILE = "onnx/model_quantized.onnx";
/** The int8 export's flat location in directories written before 2026-11-30 (still read). */
export const LEGACY_ONNX_INT8_FILE = "model.int8.onnx";
/** Cap on a model directory's JSON files (lenpred.json, config.json): they are a few KB. */
export const MAX_JSON_BYTES = 16 << 20;

/** The ONNX graph's contract: int64 [batch, sequence] inputs (attention_mask optional to the reader) → float logits. */
export const ONNX_INPUT_IDS = "input_ids";
export const ONNX_ATTENTION_MASK = "attention_mask";
export const ONNX_OUTPUT = "logits";

export interface ModelMeta {
  /** Which implementation reads this directory, e.g. "distilbert", "ngram", "majority" (see predictor/load.ts). */
  kind: string;
  buckets: BucketScheme;
  /** Tokenizer spec the labels were counted with (from the prepared data's scheme.json). */
  tokenizer: string;
  [extra: string]: unknown;
}

/** `lenpred.json` of `dir`, validated (kind, tokenizer, buckets); a LenpredError naming file/field otherwise. */
export async function readModelMeta(dir: string): Promise<ModelMeta> {
  const file = modelFile(dir, META_FILE, { missing: `not a lenpred model directory (no ${META_FILE})`, maxBytes: MAX_JSON_BYTES });
  const meta = asObject(await readJsonFile(file, { missing: `not a lenpred model directory (no ${META_FILE})` }), { file });
  if (typeof meta.kind !== "string") throw new LenpredError("missing model kind", { file, field: "kind" });
  if (typeof meta.tokenizer !== "string") throw new LenpredError("missing tokenizer", { file, field: "tokenizer" });
  return { ...meta, kind: meta.kind, tokenizer: meta.tokenizer, buckets: validateScheme(meta.buckets, file) };
}

/** Path of `lenpred.json` in `dir`, for error places. */
export function metaFileOf(dir: string): string {
  return join(dir, META_FILE);
}

/** The inference graph of a model directory: onnx/model.onnx, else ./model.onnx; undefined when neither exists. */
export function onnxFileOf(dir: string): string | undefined {
  // lstat, not exists: a dangling link or a link loop is still "the file that is there" (reported as such by modelFile).
  for (const f of [ONNX_FILE, LEGACY_ONNX_FILE]) if (lstatOrUndefined(join(dir, f))) return join(dir, f);
  return undefined;
}

/**
 * The int8 export of a model directory, confined to it (modelFile): the name lenpred.json records in `onnxInt8`
 * (onnx/model_quantized.onnx, or model.int8.onnx in older directories), else whichever of the two exists;
 * undefined when the directory has none.
 */
export function onnxInt8FileOf(dir: string, meta: ModelMeta): string | undefined {
  const recorded = meta.onnxInt8;
  if (recorded !== undefined) {
    if (typeof recorded !== "string") throw new LenpredError(`expected a file name, got ${JSON.stringify(recorded)}`, { file: metaFileOf(dir), field: "onnxInt8" });
    return modelFile(dir, recorded, { from: { file: metaFileOf(dir), field: "onnxInt8" }, missing: `missing from the model directory (lenpred.json's onnxInt8 names it)` });
  }
  for (const f of [ONNX_INT8_FILE, LEGACY_ONNX_INT8_FILE]) if (lstatOrUndefined(join(dir, f))) return modelFile(dir, f);
  return undefined;
}

function lstatOrUndefined(file: string) {
  try {
    return lstatSync(file);
  } catch {
    return undefined;
  }
}
