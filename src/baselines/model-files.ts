/** A baseline's model directory: lenpred.json plus raw float32 weight files, written atomically, read confined. */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { META_FILE, modelFile, type ModelMeta } from "../model-dir/index.js";
import { replaceDirAtomic, writeJsonAtomic } from "../util/atomic.js";
import { LenpredError, type ErrorPlace } from "../util/errors.js";

/** Write a model directory atomically: lenpred.json plus optional binary files. */
export async function saveModelDir(dir: string, meta: ModelMeta, files: Record<string, Uint8Array> = {}): Promise<void> {
  await replaceDirAtomic(dir, async (tmp) => {
    for (const [name, data] of Object.entries(files)) {
      const { writeFile } = await import("node:fs/promises");
      await writeFile(join(tmp, name), data);
    }
    await writeJsonAtomic(join(tmp, META_FILE), meta);
  });
}

export function metaNumber(meta: ModelMeta, field: string, dir: string): number {
  const v = meta[field];
  if (typeof v !== "number" || !Number.isFinite(v)) throw new LenpredError("expected a finite number", { file: join(dir, META_FILE), field });
  return v;
}

/**
 * Read `expected` float32 values from file `name` of a model directory (confined to it, a regular file of
 * exactly that size: checked before reading, so a bad name cannot stream a device into memory).
 */
export async function readFloat32File(dir: string, name: string, expected: number, from?: ErrorPlace): Promise<Float32Array> {
  const file = modelFile(dir, name, { from, missing: "model weights missing" });
  const size = (await stat(file)).size;
  if (size !== expected * 4) throw new LenpredError(`expected ${expected} float32 values (${expected * 4} bytes), found ${size} bytes`, { file });
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (e) {
    throw new LenpredError(`cannot read model weights (${(e as NodeJS.ErrnoException).code})`, { file });
  }
  if (buf.byteLength !== expected * 4) throw new LenpredError(`expected ${expected} float32 values (${expected * 4} bytes), found ${buf.byteLength} bytes`, { file });
  const out = new Float32Array(expected);
  new Uint8Array(out.buffer).set(buf);
  return out;
}

export function float32Bytes(...arrays: Float32Array[]): Uint8Array {
  const total = arrays.reduce((s, a) => s + a.length, 0);
  const out = new Float32Array(total);
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return new Uint8Array(out.buffer);
}
