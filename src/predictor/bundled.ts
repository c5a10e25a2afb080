/**
 * The models shipped in the package (`models/<name>`), reachable by name so that a project depending on
 * lenpred does not need to know where npm put it: `LengthPredictor.load("alpaca-s3")`.
 */
import { META_FILE } from "../model-dir/index.js";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { LenpredError } from "../util/errors.js";
import { repoRoot } from "../util/paths.js";

/** Directory holding the bundled models (inside the installed package). */
export const bundledModelsDir = join(repoRoot, "models");

/** Name of the model `lenpred predict` / `lenpred serve` use without --model. */
export const DEFAULT_MODEL = "alpaca-s3";

/** Absolute paths of the bundled models, by name. Their parts (`alpaca-s3/distilbert`, `…/ngram`) load by name too. */
export const bundledModels: Readonly<Record<"alpaca-s3" | "vicuna-7b", string>> = Object.freeze({
  "alpaca-s3": join(bundledModelsDir, "alpaca-s3"),
  "vicuna-7b": join(bundledModelsDir, "vicuna-7b"),
});

const NAME = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;

/**
 * The directory a model argument names: an existing path wins (so a local `./alpaca-s3` is never shadowed),
 * then a bundled model name (`alpaca-s3`, `vicuna-7b/ngram`). Anything else is returned unchanged so that the
 * loader's error names what the user typed.
 */
export function resolveBundledModel(spec: string): string {
  if (existsSync(spec) || !NAME.test(spec)) return spec;
  const dir = join(bundledModelsDir, spec);
  return existsSync(join(dir, META_FILE)) ? dir : spec;
}

/** `hf:org/name[@rev]`, or `org/name[@rev]` that is neither a path nor a bundled model: a hub model repository. */
export function isHubModelSpec(spec: string): boolean {
  if (spec.startsWith("hf:")) return true;
  // `models/my-model` with a local `models/`: a mistyped path, not a hub id (the loader then names the path).
  if (existsSync(spec) || existsSync(spec.split("/")[0]!)) return false;
  return /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*(@[\w./-]+)?$/.test(spec) && resolveBundledModel(spec) === spec;
}

/**
 * The local directory of a model argument: an existing path, a bundled name, or a Hugging Face hub repository
 * (`org/name[@rev]`, `hf:org/name`) holding a lenpred model directory, fetched into the hub cache (src/hub).
 */
export async function resolveModelDir(spec: string, hub: import("../hub/client.js").HubOptions = {}): Promise<string> {
  if (!isHubModelSpec(spec)) return resolveBundledModel(spec);
  const { hubSnapshot } = await import("../hub/client.js");
  try {
    return (await hubSnapshot(spec, undefined, hub)).dir;
  } catch (e) {
    if (!(e instanceof LenpredError) || spec.startsWith("hf:")) throw e;
    throw new LenpredError(`'${spec}' is no model directory or bundled model (${Object.keys(bundledModels).join(", ")}), and as a Hugging Face hub id: ${e.message}`);
  }
}
