/**
 * `loadPredictor(dir)`: open any lenpred model directory. Every model directory has `lenpred.json`
 * (`ModelMeta`); its `kind` selects the implementation. Add a case per kind, importing lazily so that
 * loading an n-gram model never pulls in onnxruntime.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { validateScheme, type BucketScheme } from "../data/buckets.js";
import { LenpredError } from "../util/errors.js";
import type { Predictor } from "./types.js";

export const META_FILE = "lenpred.json";

export interface ModelMeta {
  /** Which implementation reads this directory, e.g. "distilbert", "ngram", "majority". */
  kind: string;
  buckets: BucketScheme;
  /** Tokenizer spec the labels were counted with (from the prepared data's scheme.json). */
  tokenizer: string;
  [extra: string]: unknown;
}

export async function readModelMeta(dir: string): Promise<ModelMeta> {
  const file = join(dir, META_FILE);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LenpredError(code === "ENOENT" ? `not a lenpred model directory (no ${META_FILE})` : `cannot read (${code})`, { file });
  }
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new LenpredError(`malformed JSON (${(e as Error).message})`, { file });
  }
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
