/**
 * The output directory of a training run, kept consistent under Ctrl-C and kill -9.
 *
 *   <out>/                       the model directory: best checkpoint's model files (written by the model
 *     lenpred.json, config.json,  writer: HF layout + model.onnx + tokenizer.json) and training.json
 *     model.safetensors, ...
 *     training.json              options, per-epoch history, best epoch
 *     README.md                  model card generated from the run
 *     checkpoint/                while training (or with --keep-checkpoint): what `--resume` needs
 *       state.json               loop position, RNG states, history
 *       optimizer.safetensors    parameters + AdamW moments
 *
 * Every save builds a complete new directory beside `<out>` and swaps it in with renames
 * (`replaceDirAtomic`); unchanged model files are hard-linked from the current directory, so a save costs
 * only what changed. A kill during a save leaves the previous directory intact; a kill between the two
 * renames of the swap leaves it under a `.tmp-*.old` name, which `recoverOutDir` puts back.
 */
import { CONFIG_FILE, META_FILE } from "../model-dir/index.js";
import { copyFile, link, mkdir, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { NamedTensors } from "../engine/tensors.js";
import { readSafetensors, writeSafetensors } from "../model/safetensors.js";
import { replaceDirAtomic, writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { LenpredError } from "../util/errors.js";
import { readJsonFile } from "../util/json-file.js";
import type { TrainOptions } from "./options.js";
import { renderModelCard } from "./model-card.js";
import type { EpochRecord, RunState } from "./run-state.js";


export const CHECKPOINT_DIR = "checkpoint";
export const STATE_FILE = "state.json";
export const OPTIMIZER_FILE = "optimizer.safetensors";
export const TRAINING_FILE = "training.json";
export const CARD_FILE = "README.md";

/** Undo a swap interrupted between its two renames; drop leftovers of interrupted saves. */
export async function recoverOutDir(out: string): Promise<void> {
  const parent = dirname(out);
  const name = basename(out);
  let entries: string[];
  try {
    entries = await readdir(parent);
  } catch {
    return;
  }
  const prefix = `${name}.tmp-`;
  const leftovers = entries.filter((e) => e.startsWith(prefix));
  if (!leftovers.length) return;
  const outExists = await exists(out);
  const olds = leftovers.filter((e) => e.endsWith(".old"));
  if (!outExists && olds.length) {
    // Newest old copy wins (there is at most one unless several runs crashed the same way).
    const withTimes = await Promise.all(olds.map(async (e) => ({ e, t: (await stat(join(parent, e))).mtimeMs })));
    withTimes.sort((a, b) => b.t - a.t);
    await rename(join(parent, withTimes[0]!.e), out);
  }
  for (const e of leftovers) await rm(join(parent, e), { recursive: true, force: true });
}

export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

export async function hasCheckpoint(out: string): Promise<boolean> {
  return exists(join(out, CHECKPOINT_DIR, STATE_FILE));
}

export interface SaveRequest {
  state: RunState;
  /** Parameters + optimizer moments; omitted on the final save unless the checkpoint is kept. */
  optimizer?: NamedTensors;
  /** Write the model files of a new best checkpoint into the given directory; else the current ones are kept. */
  writeModel?: (dir: string) => Promise<void>;
}

export async function saveRun(out: string, req: SaveRequest): Promise<void> {
  await replaceDirAtomic(out, async (tmp) => {
    if (req.writeModel) await req.writeModel(tmp);
    else await linkModelFiles(out, tmp);
    if (req.optimizer) {
      const ck = join(tmp, CHECKPOINT_DIR);
      await mkdir(ck, { recursive: true });
      await writeSafetensors(join(ck, OPTIMIZER_FILE), req.optimizer); // F32: resume is bit-exact
      await writeJsonAtomic(join(ck, STATE_FILE), req.state);
    }
    const s = req.state;
    await writeJsonAtomic(join(tmp, TRAINING_FILE), {
      status: s.status, options: s.options, epochsDone: s.history.length, globalStep: s.globalStep,
      elapsedSeconds: s.elapsedSeconds, best: s.best, history: s.history,
    });
    await writeFileAtomic(join(tmp, CARD_FILE), renderModelCard(s, await readJsonIf(join(tmp, META_FILE)), await readJsonIf(join(tmp, CONFIG_FILE))));
  });
}

/** Hard-link (copy across devices) the model files of `from` into `to`, leaving out training state. */
async function linkModelFiles(from: string, to: string): Promise<void> {
  let entries;
  try {
    entries = await readdir(from, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  for (const e of entries) {
    if (e.name === CHECKPOINT_DIR || e.name === TRAINING_FILE || e.name === CARD_FILE || e.name.includes(".tmp-")) continue;
    await linkTree(join(from, e.name), join(to, e.name), e.isDirectory());
  }
}

async function linkTree(src: string, dst: string, isDir: boolean): Promise<void> {
  if (isDir) {
    await mkdir(dst, { recursive: true });
    for (const e of await readdir(src, { withFileTypes: true })) await linkTree(join(src, e.name), join(dst, e.name), e.isDirectory());
    return;
  }
  try {
    await link(src, dst);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EXDEV" && (e as NodeJS.ErrnoException).code !== "EPERM") throw e;
    await copyFile(src, dst);
  }
}

async function readJsonIf(file: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export async function loadRun(out: string): Promise<{ state: RunState; optimizer: NamedTensors }> {
  const file = join(out, CHECKPOINT_DIR, STATE_FILE);
  const unreadable = (detail: string | undefined) => `unreadable checkpoint (${detail})`;
  const state = (await readJsonFile(file, { missing: "no resumable checkpoint here (nothing to --resume)", unreadable, malformed: unreadable })) as RunState;
  if (state.version !== 1) throw new LenpredError(`unsupported checkpoint version ${String(state.version)}`, { file, field: "version" });
  const { tensors } = await readSafetensors(join(out, CHECKPOINT_DIR, OPTIMIZER_FILE));
  return { state, optimizer: tensors };
}
