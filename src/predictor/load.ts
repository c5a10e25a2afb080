/**
 * `loadPredictor(dir)`: open any lenpred model directory, and the one registry of model kinds. Every model
 * directory has `lenpred.json` (`ModelMeta`, read once here); its `kind` selects the loader registered for it.
 * Loaders import their implementation lazily, so that loading an n-gram model never pulls in onnxruntime.
 * A new model kind registers here (built-ins below) or from outside with `registerModelKind`.
 */
import { metaFileOf, readModelMeta, type ModelMeta } from "../model-dir/index.js";
import { LenpredError } from "../util/errors.js";
import type { Predictor, PredictorLoadOptions } from "../model/prediction.js";

/** Re-exported for serve/predictor-worker.ts until it imports it from its owner, model-dir/. */

/**
 * Opens a model directory whose lenpred.json (already read and validated: `meta`) names this kind. `load`
 * opens nested model directories (an ensemble's members) through the same registry.
 */
export type ModelKindLoader = (meta: ModelMeta, dir: string, opts: PredictorLoadOptions, load: typeof loadPredictor) => Promise<Predictor>;

const loaders = new Map<string, ModelKindLoader>();

export function registerModelKind(kind: string, loader: ModelKindLoader): void {
  if (loaders.has(kind)) throw new LenpredError(`model kind '${kind}' is already registered`);
  loaders.set(kind, loader);
}

/** The registered kinds, in registration order. */
export function modelKinds(): string[] {
  return [...loaders.keys()];
}

export async function loadPredictor(dir: string, opts: PredictorLoadOptions = {}): Promise<Predictor> {
  const meta = await readModelMeta(dir);
  const loader = loaders.get(meta.kind);
  if (!loader) throw new LenpredError(`unknown model kind '${meta.kind}'`, { file: metaFileOf(dir), field: "kind" });
  return loader(meta, dir, opts, loadPredictor);
}

// The built-in kinds. Options (threads, batch sizes) matter only to the ONNX kind; ensemble members are
// opened with the defaults.
registerModelKind("majority", async (meta, dir) => (await import("../baselines/constant.js")).ConstantPredictor.fromMeta(meta, dir));
registerModelKind("median", async (meta, dir) => (await import("../baselines/constant.js")).ConstantPredictor.fromMeta(meta, dir));
registerModelKind("linear", async (meta, dir) => (await import("../baselines/linear.js")).LinearPredictor.fromMeta(meta, dir));
registerModelKind("ngram", async (meta, dir) => (await import("../baselines/ngram/model.js")).NgramPredictor.load(meta, dir));
registerModelKind("distilbert", async (meta, dir, opts) => (await import("./distilbert-predictor.js")).DistilBertPredictor.load(dir, opts, meta));
registerModelKind("ensemble", async (meta, dir, _opts, load) => (await import("./ensemble.js")).EnsemblePredictor.load(meta, dir, (d) => load(d)));
