/**
 * Float32 tensors in the safetensors layout (8-byte little-endian header length, JSON header, raw data),
 * used for the training-state checkpoint (parameters + AdamW moments). Read back bit-exactly, which is what
 * makes `train --resume` reproduce an uninterrupted run.
 */
import { readFile } from "node:fs/promises";
import { numel, type NamedTensors } from "../engine/tensors.js";
import { writeFileAtomic } from "../util/atomic.js";
import { LenpredError } from "../util/errors.js";

export function encodeTensors(tensors: NamedTensors, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const names = [...tensors.keys()].sort();
  for (const name of names) {
    const t = tensors.get(name)!;
    if (t.data.length !== numel(t.shape)) throw new LenpredError(`tensor ${name}: shape [${t.shape}] does not match ${t.data.length} values`);
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8); // keep the data 8-byte aligned
  const headerBytes = Buffer.from(json, "utf8");
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const name of names) {
    const t = tensors.get(name)!;
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}

export function decodeTensors(bytes: Uint8Array, file?: string): { tensors: NamedTensors; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new LenpredError("truncated tensor file", { file });
  const headerLen = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + headerLen > bytes.length) throw new LenpredError("truncated tensor file header", { file });
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLen)).toString("utf8"));
  } catch (e) {
    throw new LenpredError(`malformed tensor file header (${(e as Error).message})`, { file });
  }
  const base = 8 + headerLen;
  const tensors: NamedTensors = new Map();
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const e = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (e.dtype !== "F32") throw new LenpredError(`unsupported dtype ${e.dtype}`, { file, field: name });
    const [a, b] = e.data_offsets;
    if (b - a !== numel(e.shape) * 4 || base + b > bytes.length) throw new LenpredError("tensor data out of range", { file, field: name });
    // Copy so the tensor owns aligned memory independent of the file buffer.
    const data = new Float32Array(numel(e.shape));
    new Uint8Array(data.buffer).set(bytes.subarray(base + a, base + b));
    tensors.set(name, { shape: [...e.shape], data });
  }
  return { tensors, metadata: (header.__metadata__ as Record<string, string>) ?? {} };
}

export async function writeTensorFile(path: string, tensors: NamedTensors, metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(path, encodeTensors(tensors, metadata));
}

export async function readTensorFile(path: string): Promise<{ tensors: NamedTensors; metadata: Record<string, string> }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new LenpredError(`cannot read (${(e as NodeJS.ErrnoException).code})`, { file: path });
  }
  return decodeTensors(bytes, path);
}
