/**
 * `loadPredictor(dir)`: open any lenpred model directory. Every model directory has `lenpred.json`
 * (`ModelMeta`); its `kind` selects the implementation. Add a case per kind, importing lazily so that
 * loading an n-gram model never pulls in onnxruntime.
 */
import { join } from "node:path";
import { validateScheme, type BucketScheme } from "../data/buckets.js";
import { LenpredError } from "../util/errors.js";
import type { Predictor } from "./types.js";
import { asObject } from "../util/fields.js";
import { readJsonFile } from "../util/json-file.js";
import { modelFile } from "./model-dir.js";

export { modelFile, modelSubdir } from "./model-dir.js";

export const META_FILE = "lenpred.json";
/** Cap on a model directory's JSON files (lenpred.json, config.json): they are a few KB. */
export const MAX_JSON_BYTES = 16 << 20;

export interface ModelMeta {
  /** Which implementation reads this directory, e.g. "distilbert", "ngram", "majority". */
  kind: string;
  buckets: BucketScheme;
  /** Tokenizer spec the labels were counted with (from the prepared data's scheme.json). */
  tokenizer: string;
  [extra: string]: unknown;
}

export async function readModelMeta(dir: string): Promise<ModelMeta> {
  const file = modelFile(dir, META_FILE, { missing: `not a lenpred model directory (no ${META_FILE})`, maxBytes: MAX_JSON_BYTES });
  const meta = asObject(await readJsonFile(file, { missing: `not a lenpred model directory (no ${META_FILE})` }), { file });
  if (typeof meta.kind !== "string") throw new LenpredError("missing model kind", { file, field: "kind" });
  if (typeof meta.tokenizer !== "string") throw new LenpredError("missing tokenizer", { file, field: "tokenizer" });
  return { ...meta, kind: meta.kind, tokenizer: meta.tokenizer, buckets: validateScheme(meta.buckets, file) };
}

export async function loadPredictor(dir: string): Promise<Predictor> {
  const meta = await readModelMeta(dir);
  switch (meta.kind) {
    case "majority":
    case "median":
    case "linear":
    case "ngram":
      return (await import("../baselines/index.js")).loadBaseline(meta, dir);
    case "distilbert":
      return (await import("./distilbert.js")).DistilBertPredictor.load(dir);
    case "ensemble":
      return (await import("./ensemble.js")).EnsemblePredictor.load(meta, dir);
    default:
      throw new LenpredError(`unknown model kind '${meta.kind}'`, { file: join(dir, META_FILE), field: "kind" });
  }
}
