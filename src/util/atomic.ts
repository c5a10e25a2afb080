/**
 * Write-then-rename helpers: a crash, Ctrl-C or kill -9 leaves either the old file/dir or the new one,
 * never a half-written one. Temporary names end in `.tmp-<pid>-<n>` (git-ignored).
 *
 * Every write, fsync and close is awaited and checked (a full disk is an error, never a silent success or a
 * hang); file-system failures become one-line `LenpredError`s naming the path. Temporaries are registered in
 * one process-wide cleanup registry: removed on SIGINT/SIGTERM and at exit, and temporaries left by a process
 * that no longer exists (kill -9, power cut) are swept by the next write to the same path.
 */
import { rmSync, type WriteStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { LenpredError } from "./errors.js";

let counter = 0;
export function tempName(path: string): string {
  return `${path}.tmp-${process.pid}-${counter++}`;
}

// ---- file-system errors → one clear line -----------------------------------------------------------------

const REASONS: Record<string, string> = {
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "is a directory",
  ENOTDIR: "a parent is not a directory",
  EBUSY: "busy (a mount point?)",
  EXDEV: "crosses a file-system boundary (a mount point?)",
  EIO: "I/O error",
  EFBIG: "file too large",
  EMFILE: "too many open files",
};

/** A file-system error as a LenpredError naming `path`; LenpredErrors pass through. Keeps `code`. */
function fsError(e: unknown, path: string, action: string): Error {
  if (e instanceof LenpredError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (!code) return e as Error;
  const reason = REASONS[code] ?? (e as Error).message;
  return Object.assign(new LenpredError(`cannot ${action}: ${reason} (${code})`, { file: path }), { code, action, reason });
}

/** An fsError raised inside a directory swap names the final path, not the temporary that is gone by now. */
function renameInError(e: unknown, tmp: string, dir: string): unknown {
  const err = e as LenpredError & { code?: string; action?: string; reason?: string };
  const file = err instanceof LenpredError ? err.place.file : undefined;
  if (!err.action || !file?.startsWith(tmp)) return e;
  const path = dir + file.slice(tmp.length);
  return Object.assign(new LenpredError(`cannot ${err.action}: ${err.reason} (${err.code})`, { file: path }), { code: err.code, action: err.action, reason: err.reason });
}

// ---- one signal/exit cleanup registry for every temporary ---------------------------------------------------

const live = new Set<string>();
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

function removeAllNow(): void {
  for (const p of live) {
    try { rmSync(p, { recursive: true, force: true }); } catch { /* best effort while exiting */ }
  }
  live.clear();
}

function onSignal(sig: NodeJS.Signals): void {
  // Another handler (train's graceful stop, serve's drain) owns this signal: it will exit, and the exit hook
  // removes what is left. Alone, we clean up and die of the same signal (exit status 128+n, as without us).
  if (process.listenerCount(sig) > 1) return;
  removeAllNow();
  uninstall();
  process.kill(process.pid, sig);
}

let installed = false;
function install(): void {
  if (installed) return;
  installed = true;
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on("exit", removeAllNow);
}
function uninstall(): void {
  if (!installed) return;
  installed = false;
  for (const s of SIGNALS) process.off(s, onSignal);
  process.off("exit", removeAllNow);
}

/**
 * Register a temporary path (file or directory) to be removed if the process is interrupted or exits before
 * `release` is called. Handlers are installed only while something is registered.
 */
function trackTemp(path: string): () => void {
  live.add(path);
  install();
  return () => {
    live.delete(path);
    if (live.size === 0) uninstall();
  };
}

/** Paths currently registered for cleanup (for tests). */
export function trackedTemps(): string[] {
  return [...live];
}

// ---- stale temporaries of dead processes ------------------------------------------------------------------

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Remove `<path>.tmp-<pid>-<n>[.old]` left by processes that no longer run. If `path` itself is missing and a
 * dead process left the previous version aside (`.old`, a crash between the two renames of a directory swap),
 * that version is put back instead of deleted. Best effort: never throws.
 */
export async function sweepStaleTemps(path: string): Promise<string[]> {
  const parent = dirname(path);
  const re = new RegExp(`^${basename(path).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.tmp-(\\d+)-\\d+(\\.old)?$`);
  const removed: string[] = [];
  let entries: string[];
  try {
    entries = await readdir(parent);
  } catch {
    return removed;
  }
  const stale = entries.map((e) => ({ e, m: re.exec(e) })).filter((x) => x.m && !pidAlive(Number(x.m[1])));
  if (!stale.length) return removed;
  let targetExists = await stat(path).then(() => true, () => false);
  for (const { e, m } of stale) {
    const p = join(parent, e);
    try {
      if (m![2] && !targetExists) {
        await rename(p, path);
        targetExists = true;
        continue;
      }
      await rm(p, { recursive: true, force: true });
      removed.push(p);
    } catch { /* another process may be sweeping too */ }
  }
  return removed;
}

// ---- files ------------------------------------------------------------------------------------------------

/**
 * `mkdir -p` that reports the real cause: Node's recursive mkdir says ENOENT when a level cannot be created
 * (EROFS, EACCES on a parent), so on failure the levels are created one by one to surface the actual error.
 */
async function mkdirp(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw fsError(e, dir, "create the directory");
  }
  const levels: string[] = [];
  for (let d = dir; dirname(d) !== d; d = dirname(d)) levels.unshift(d);
  for (const d of levels) {
    try {
      await mkdir(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw fsError(e, d, "create the directory");
    }
  }
}

async function mkdirParent(path: string): Promise<void> {
  await mkdirp(dirname(path));
}

/** fsync a directory so a rename in it survives a power cut; file systems that refuse are ignored. */
async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, "r");
    await fh.sync();
  } catch { /* EINVAL/EISDIR on some file systems: nothing more we can do */ } finally {
    await fh?.close().catch(() => {});
  }
}

/** Write a whole file atomically (fsync before rename so a power cut does not leave an empty file). */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdirParent(path);
  await sweepStaleTemps(path);
  const tmp = tempName(path);
  const release = trackTemp(tmp);
  try {
    const fh = await open(tmp, "w");
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw fsError(err, path, "write");
  } finally {
    release();
  }
  await syncDir(dirname(path));
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** A stream to a temporary file; `commit()` renames it into place, `abort()` deletes it. */
export interface AtomicWriteStream {
  stream: WriteStream;
  /** Write a chunk, honouring backpressure; rejects (never hangs) when the stream fails, e.g. on a full disk. */
  write(chunk: string | Uint8Array): Promise<void>;
  /** Flush, fsync, close, then rename into place; rejects on any failure (the temporary is then removed). */
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export async function openAtomicWriteStream(path: string): Promise<AtomicWriteStream> {
  await mkdirParent(path);
  await sweepStaleTemps(path);
  const tmp = tempName(path);
  const release = trackTemp(tmp);
  let fh: FileHandle;
  try {
    fh = await open(tmp, "w");
  } catch (e) {
    release();
    throw fsError(e, path, "write");
  }
  // We own the descriptor (autoClose off) so commit can fsync it after the last write has landed.
  const stream = fh.createWriteStream({ autoClose: false });
  let failed: Error | undefined;
  stream.on("error", (e) => { failed ??= e; });
  let done = false;
  // The stream holds a reference on the FileHandle: fh.close() waits until the stream has closed.
  const closeStream = () => new Promise<void>((res) => {
    if (stream.closed) return res();
    stream.once("close", () => res());
    stream.destroy();
  });
  const cleanup = async () => {
    if (done) return;
    done = true;
    await closeStream();
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    release();
  };
  /** Resolve on `event`, reject on error or premature close: a write never waits for a 'drain' that cannot come. */
  const until = (event: "drain" | "finish") => new Promise<void>((res, rej) => {
    if (stream.destroyed) return rej(failed ?? new Error("stream closed"));
    const off = () => { stream.off(event, ok); stream.off("error", bad); stream.off("close", closed); };
    const ok = () => { off(); res(); };
    const bad = (e: Error) => { off(); rej(e); };
    const closed = () => { off(); rej(failed ?? new Error("stream closed")); };
    stream.once(event, ok);
    stream.once("error", bad);
    stream.once("close", closed);
  });
  return {
    stream,
    async write(chunk) {
      if (failed) throw fsError(failed, path, "write");
      if (done) throw new Error(`write after commit/abort of ${path}`);
      if (!stream.write(chunk)) {
        try {
          await until("drain");
        } catch (e) {
          throw fsError(failed ?? e, path, "write");
        }
      }
      if (failed) throw fsError(failed, path, "write");
    },
    async commit() {
      try {
        if (failed) throw failed;
        const finished = until("finish");
        stream.end();
        await finished;
        if (failed) throw failed;
        await fh.sync();
        await closeStream();
        done = true;
        await fh.close();
        await rename(tmp, path);
        release();
      } catch (e) {
        done = false;
        await cleanup();
        throw fsError(failed ?? e, path, "write");
      }
      await syncDir(dirname(path));
    },
    async abort() {
      await cleanup();
    },
  };
}

// ---- directories ------------------------------------------------------------------------------------------

export interface ReplaceDirOptions {
  /** Replace `dir` even if it exists and is not a directory (a regular file there is otherwise refused). */
  force?: boolean;
}

/**
 * Replace a whole directory atomically: `fill(tmpDir)` writes into a fresh temporary directory which is
 * then swapped in. The old directory (if any) is moved aside first and removed only after the swap.
 * Refuses, before calling `fill`, a target that is a mount point (it cannot be renamed) or, without `force`,
 * something other than a directory.
 */
export async function replaceDirAtomic(dir: string, fill: (tmpDir: string) => Promise<void>, opts: ReplaceDirOptions = {}): Promise<void> {
  const parent = dirname(dir);
  await sweepStaleTemps(dir);
  const [st, pst] = await Promise.all([stat(dir).catch(() => undefined), stat(parent).catch(() => undefined)]);
  if (st && !st.isDirectory() && !opts.force) {
    throw new LenpredError("exists and is not a directory; refusing to replace it (choose another path, or remove it first)", { file: dir });
  }
  if (st?.isDirectory() && pst && st.dev !== pst.dev) {
    throw new LenpredError("is a mount point, which cannot be replaced atomically; write to a directory inside it instead", { file: dir });
  }
  const tmp = tempName(dir);
  await mkdirp(parent);
  // Registered before it exists: a signal between the mkdir and the registration would leave it behind.
  const release = trackTemp(tmp);
  try {
    await mkdir(tmp);
  } catch (e) {
    release();
    throw fsError(e, dir, "create the output directory");
  }
  try {
    try {
      await fill(tmp);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw renameInError(err, tmp, dir);
    }
    await syncDir(tmp);
    const old = tempName(dir) + ".old";
    let moved = false;
    try {
      await rename(dir, old);
      moved = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") {
        await rm(tmp, { recursive: true, force: true });
        throw fsError(e, dir, "replace");
      }
    }
    // From here the previous version lives at `old`: a crash leaves it there for sweepStaleTemps to put back.
    try {
      await rename(tmp, dir);
    } catch (e) {
      if (moved) await rename(old, dir).catch(() => {});
      await rm(tmp, { recursive: true, force: true });
      throw fsError(e, dir, "replace");
    }
    await syncDir(parent);
    if (moved) await rm(old, { recursive: true, force: true });
  } finally {
    release();
  }
}
