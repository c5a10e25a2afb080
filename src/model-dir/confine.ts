/**
 * The one gate for files of a model directory: every reader (lenpred.json, config.json, model.onnx,
 * tokenizer.json, safetensors, n-gram weights, ensemble members) resolves names through `modelFile` /
 * `modelSubdir`, so that a model directory cannot point outside itself (`../../dev/zero`, an absolute path, a
 * symlink leaving the directory) and only regular files are opened: a FIFO would block `open()` forever, a
 * character device would stream without end. Checked with stat before any open.
 */
import { lstatSync, realpathSync, statSync, type Stats } from "node:fs";
import { basename, dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { LenpredError, type ErrorPlace } from "../util/errors.js";

export interface ModelFileOptions {
  /** Message when the file does not exist (default "missing from the model directory"). */
  missing?: string;
  /** Where the name came from, for errors (e.g. lenpred.json's `weightsFile`). */
  from?: ErrorPlace;
  /** Largest accepted size in bytes (a model directory never needs more; guards reading junk into memory). */
  maxBytes?: number;
}

/** Absolute path of regular file `name` inside model directory `dir`; a LenpredError naming it otherwise. */
export function modelFile(dir: string, name: string, opts: ModelFileOptions = {}): string {
  const file = confined(dir, name, opts.from);
  const st = statOf(file, opts.missing ?? "missing from the model directory");
  if (!st.isFile()) throw new LenpredError(`not a regular file (${kindOf(st)}); a model directory holds only regular files`, { file });
  if (opts.maxBytes !== undefined && st.size > opts.maxBytes) {
    throw new LenpredError(`is ${st.size} bytes, more than the ${opts.maxBytes} bytes such a file can need`, { file });
  }
  return file;
}

/** Absolute path of directory `name` inside model directory `dir` (an ensemble member). */
export function modelSubdir(dir: string, name: string, opts: Omit<ModelFileOptions, "maxBytes"> = {}): string {
  const sub = confined(dir, name, opts.from);
  if (sub === resolve(dir)) throw new LenpredError(`'${name}' is the model directory itself`, { ...opts.from });
  const st = statOf(sub, opts.missing ?? "missing from the model directory");
  if (!st.isDirectory()) throw new LenpredError(`not a directory (${kindOf(st)})`, { file: sub });
  return sub;
}

function confined(dir: string, name: string, from: ErrorPlace = {}): string {
  if (typeof name !== "string" || name === "" || name.includes("\0")) throw new LenpredError(`expected a file name, got ${JSON.stringify(name)}`, from);
  if (isAbsolute(name)) throw new LenpredError(`'${name}' is an absolute path; files of a model directory are named relative to it`, from);
  const root = resolve(dir);
  const file = resolve(root, name);
  if (!inside(root, file)) throw new LenpredError(`'${name}' is outside the model directory`, from);
  // Symlinks may point anywhere: compare real paths too (when the target exists; a missing one is reported later).
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return file; // the caller's stat reports it as missing
    throw new LenpredError(`cannot open the model directory (${code})`, { file: root });
  }
  let realFile: string | undefined;
  try {
    realFile = realpathSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw new LenpredError("is a symlink loop", { file });
    if (code !== "ENOENT") throw new LenpredError(`cannot open (${code})`, { file });
  }
  if (realFile !== undefined && realFile !== realRoot && !inside(linkRoot(realRoot), realFile)) {
    throw new LenpredError(`is a link to '${realFile}', outside the model directory`, { file });
  }
  return file;
}

/**
 * Where a model directory's links may point. A Hugging Face hub cache snapshot
 * (`…/models--org--name/snapshots/<commit>/`) holds links into its repository's `blobs/` folder by design
 * (huggingface_hub's layout, which lenpred's hub client writes too), so there the repository folder is the bound.
 */
function linkRoot(realRoot: string): string {
  const snapshots = dirname(realRoot);
  const repo = dirname(snapshots);
  return basename(snapshots) === "snapshots" && basename(repo).startsWith("models--") ? repo : realRoot;
}

function inside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === "" || (!rel.startsWith(".." + sep) && rel !== ".." && !isAbsolute(rel));
}

function statOf(file: string, missing: string): Stats {
  try {
    return statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw new LenpredError("is a symlink loop", { file });
    if (code === "ENOENT" || code === "ENOTDIR") {
      // A dangling symlink exists but points nowhere: say so rather than "missing".
      let dangling = false;
      try { dangling = lstatSync(file).isSymbolicLink(); } catch { /* really absent */ }
      throw new LenpredError(dangling ? "is a dangling symlink" : missing, { file });
    }
    throw new LenpredError(`cannot open (${code})`, { file });
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  return "not a file";
}
