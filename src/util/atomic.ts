/**
 * Write-then-rename helpers: a crash, Ctrl-C or kill -9 leaves either the old file/dir or the new one,
 * never a half-written one. Temporary names end in `.tmp-<pid>-<n>` (git-ignored).
 */
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, rename, rm, writeFile, open } from "node:fs/promises";
import { dirname } from "node:path";

let counter = 0;
export function tempName(path: string): string {
  return `${path}.tmp-${process.pid}-${counter++}`;
}

/** Write a whole file atomically (fsync before rename so a power cut does not leave an empty file). */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempName(path);
  try {
    await writeFile(tmp, data);
    const fh = await open(tmp, "r+");
    try { await fh.sync(); } finally { await fh.close(); }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** A stream to a temporary file; `commit()` renames it into place, `abort()` deletes it. */
export interface AtomicWriteStream {
  stream: WriteStream;
  /** Write a chunk, honouring backpressure. */
  write(chunk: string | Uint8Array): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export async function openAtomicWriteStream(path: string): Promise<AtomicWriteStream> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempName(path);
  const stream = createWriteStream(tmp);
  let failed: Error | undefined;
  stream.on("error", (e) => { failed = e; });
  const closed = () => new Promise<void>((res, rej) => {
    if (stream.closed) return failed ? rej(failed) : res();
    stream.end(() => (failed ? rej(failed) : res()));
  });
  return {
    stream,
    async write(chunk) {
      if (failed) throw failed;
      if (!stream.write(chunk)) await new Promise<void>((res) => stream.once("drain", () => res()));
    },
    async commit() {
      await closed();
      await rename(tmp, path);
    },
    async abort() {
      // The file is opened asynchronously: wait until the stream has closed its descriptor, else the
      // open may land after the rm and leave the temporary file behind.
      if (!stream.closed) await new Promise<void>((res) => { stream.once("close", () => res()); stream.destroy(); });
      await rm(tmp, { force: true });
    },
  };
}

/**
 * Replace a whole directory atomically: `fill(tmpDir)` writes into a fresh temporary directory which is
 * then swapped in. The old directory (if any) is moved aside first and removed only after the swap.
 */
export async function replaceDirAtomic(dir: string, fill: (tmpDir: string) => Promise<void>): Promise<void> {
  const tmp = tempName(dir);
  await mkdir(tmp, { recursive: true });
  try {
    await fill(tmp);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  const old = tempName(dir) + ".old";
  let moved = false;
  try {
    await rename(dir, old);
    moved = true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  await rename(tmp, dir);
  if (moved) await rm(old, { recursive: true, force: true });
}
