/**
 * safetensors read/write (the format HF `transformers` loads): 8-byte little-endian header length, a JSON
 * header `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}` padded with
 * spaces to a multiple of 8, then the raw little-endian tensor bytes. lenpred holds float32 in memory and can
 * store F32, F16 or BF16. The header is validated the way the reference implementation does (known dtype,
 * byte size = numel × dtype size, offsets contiguous and covering the data exactly), and files at or above
 * `STREAM_THRESHOLD_BYTES` are read and written tensor by tensor so a full-size checkpoint never needs a
 * second copy of itself in memory.
 */
import { open, stat } from "node:fs/promises";
import { endianness } from "node:os";
import { openAtomicWriteStream, writeFileAtomic } from "../util/atomic.js";
import { LenpredError } from "../util/errors.js";
import { decodeHalf, encodeHalf } from "./half.js";
import { numel, type FloatTensor, type NamedTensors } from "../engine/tensors.js";

export type StoredDtype = "F32" | "F16" | "BF16";
const DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const FLOAT_DTYPES = new Set<string>(["F32", "F16", "BF16"]);

// 256 MB (decimal): a full distilbert-base checkpoint (268 MB in F32) is streamed.
export const STREAM_THRESHOLD_BYTES = 256_000_000;
/** The reference implementation refuses headers above 100 MB; so do we (it also bounds a bad length field). */
const MAX_HEADER_BYTES = 100_000_000;

if (endianness() !== "LE") throw new Error("lenpred's safetensors code assumes a little-endian host");

export interface TensorEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Byte range relative to the start of the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  entries: TensorEntry[];
  metadata: Record<string, string>;
  /** Byte offset of the data section in the file. */
  dataStart: number;
}

export interface ReadResult {
  tensors: NamedTensors;
  metadata: Record<string, string>;
  /** Stored dtype per tensor name. */
  dtypes: Map<string, StoredDtype>;
  /** Tensors that were not read because their dtype is not a float type (only with `skipNonFloat`). */
  skipped: string[];
}

export interface ReadOptions {
  /** Skip integer/bool tensors (e.g. an old checkpoint's `position_ids` buffer) instead of failing. */
  skipNonFloat?: boolean;
  /** Only read these tensors (others are validated but not decoded). */
  only?: (name: string) => boolean;
  streamThresholdBytes?: number;
}

export interface WriteOptions {
  dtype?: StoredDtype;
  metadata?: Record<string, string>;
  streamThresholdBytes?: number;
}

/** Parse and validate a header. `fileSize` is the whole file's size in bytes. */
export function parseHeader(prefix: Uint8Array, fileSize: number, file?: string): { headerLen: number } | SafetensorsHeader {
  if (fileSize < 8 || prefix.length < 8) throw new LenpredError("not a safetensors file (shorter than the 8-byte header length)", { file });
  const dv = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  const len = dv.getBigUint64(0, true);
  if (len > BigInt(MAX_HEADER_BYTES) || Number(len) + 8 > fileSize) {
    throw new LenpredError(`not a safetensors file (header length ${len} does not fit the file of ${fileSize} bytes)`, { file });
  }
  const headerLen = Number(len);
  if (prefix.length < 8 + headerLen) return { headerLen };
  const text = new TextDecoder("utf-8", { fatal: true });
  let raw: unknown;
  try {
    raw = JSON.parse(text.decode(prefix.subarray(8, 8 + headerLen)));
  } catch (e) {
    throw new LenpredError(`safetensors header is not valid UTF-8 JSON (${(e as Error).message})`, { file });
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new LenpredError("safetensors header must be a JSON object", { file });
  const dataStart = 8 + headerLen;
  const dataSize = fileSize - dataStart;
  const entries: TensorEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (!v || typeof v !== "object" || Array.isArray(v) || Object.values(v).some((x) => typeof x !== "string")) {
        throw new LenpredError("__metadata__ must map strings to strings", { file, field: "__metadata__" });
      }
      metadata = v as Record<string, string>;
      continue;
    }
    const place = { file, field: name };
    if (!v || typeof v !== "object") throw new LenpredError("tensor entry must be an object", place);
    const { dtype, shape, data_offsets: off } = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== "string" || !(dtype in DTYPE_BYTES)) throw new LenpredError(`unknown dtype ${JSON.stringify(dtype)}`, place);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw new LenpredError("shape must be an array of non-negative integers", place);
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0) || off[1] < off[0]) {
      throw new LenpredError("data_offsets must be [begin, end] with 0 <= begin <= end", place);
    }
    const expected = numel(shape) * DTYPE_BYTES[dtype]!;
    if (off[1] - off[0] !== expected) {
      throw new LenpredError(`data_offsets span ${off[1] - off[0]} bytes but ${dtype} ${JSON.stringify(shape)} needs ${expected}`, place);
    }
    entries.push({ name, dtype, shape: shape as number[], begin: off[0], end: off[1] });
  }
  // Offsets must tile the data section exactly: no gaps, no overlaps, nothing trailing.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of sorted) {
    if (e.begin !== pos) throw new LenpredError(`data_offsets begin at ${e.begin}, expected ${pos} (overlapping or non-contiguous tensors)`, { file, field: e.name });
    pos = e.end;
  }
  if (pos !== dataSize) throw new LenpredError(`tensors cover ${pos} bytes but the data section has ${dataSize}`, { file });
  return { entries, metadata, dataStart };
}

function decodeTensor(bytes: Uint8Array, dtype: StoredDtype): Float32Array {
  if (dtype === "F32") {
    // Copy into an aligned buffer (the data section's offsets are not necessarily 4-byte aligned).
    const out = new Float32Array(bytes.length / 4);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  return decodeHalf(bytes, dtype);
}

function encodeTensor(t: FloatTensor, dtype: StoredDtype): Uint8Array {
  if (dtype === "F32") return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return encodeHalf(t.data, dtype);
}

function collect(header: SafetensorsHeader, file: string | undefined, opts: ReadOptions, read: (e: TensorEntry) => Uint8Array | Promise<Uint8Array>) {
  return (async (): Promise<ReadResult> => {
    const res: ReadResult = { tensors: new Map(), metadata: header.metadata, dtypes: new Map(), skipped: [] };
    for (const e of header.entries) {
      if (!FLOAT_DTYPES.has(e.dtype)) {
        if (opts.skipNonFloat) { res.skipped.push(e.name); continue; }
        throw new LenpredError(`dtype ${e.dtype} is not supported (lenpred reads F32, F16 and BF16)`, { file, field: e.name });
      }
      if (opts.only && !opts.only(e.name)) continue;
      const dtype = e.dtype as StoredDtype;
      res.tensors.set(e.name, { shape: e.shape, data: decodeTensor(await read(e), dtype) });
      res.dtypes.set(e.name, dtype);
    }
    return res;
  })();
}

/** Decode a whole safetensors file held in memory. */
export function decodeSafetensors(buf: Uint8Array, opts: ReadOptions = {}, file?: string): Promise<ReadResult> {
  const h = parseHeader(buf, buf.length, file);
  if (!("entries" in h)) throw new LenpredError("truncated safetensors header", { file });
  return collect(h, file, opts, (e) => buf.subarray(h.dataStart + e.begin, h.dataStart + e.end));
}

export async function readSafetensors(file: string, opts: ReadOptions = {}): Promise<ReadResult> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LenpredError(code === "ENOENT" ? "file not found" : `cannot read (${code})`, { file });
  }
  const fh = await open(file, "r");
  try {
    if (size < (opts.streamThresholdBytes ?? STREAM_THRESHOLD_BYTES)) {
      const buf = new Uint8Array(size);
      await readExactly(fh, buf, 0, file);
      return await decodeSafetensors(buf, opts, file);
    }
    // Streamed: read the header, then each tensor on its own (peak memory ≈ decoded float32 tensors only).
    const first = new Uint8Array(8);
    await readExactly(fh, first, 0, file);
    const probe = parseHeader(first, size, file);
    if ("entries" in probe) throw new Error("unreachable");
    const prefix = new Uint8Array(8 + probe.headerLen);
    await readExactly(fh, prefix, 0, file);
    const h = parseHeader(prefix, size, file) as SafetensorsHeader;
    return await collect(h, file, opts, async (e) => {
      const bytes = new Uint8Array(e.end - e.begin);
      await readExactly(fh, bytes, h.dataStart + e.begin, file);
      return bytes;
    });
  } finally {
    await fh.close();
  }
}

/** Only the validated header of a safetensors file (tensor names, dtypes, shapes, byte ranges). */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (e) {
    throw new LenpredError(`cannot read (${(e as NodeJS.ErrnoException).code})`, { file });
  }
  const fh = await open(file, "r");
  try {
    const first = new Uint8Array(Math.min(size, 8));
    await readExactly(fh, first, 0, file);
    const probe = parseHeader(first, size, file);
    if ("entries" in probe) return probe;
    const prefix = new Uint8Array(8 + probe.headerLen);
    await readExactly(fh, prefix, 0, file);
    return parseHeader(prefix, size, file) as SafetensorsHeader;
  } finally {
    await fh.close();
  }
}

async function readExactly(fh: Awaited<ReturnType<typeof open>>, buf: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    // Large reads are chunked: a single read() is capped at 2 GB and big ones block the event loop longer.
    const { bytesRead } = await fh.read(buf, done, Math.min(buf.length - done, 64 << 20), position + done);
    if (bytesRead === 0) throw new LenpredError(`unexpected end of file at byte ${position + done}`, { file });
    done += bytesRead;
  }
}

/** Header JSON + layout for `tensors` stored as `dtype` (names sorted, as the reference writer does). */
function layout(tensors: NamedTensors, opts: WriteOptions): { header: Uint8Array; names: string[]; dataBytes: number } {
  const dtype = opts.dtype ?? "F32";
  const names = [...tensors.keys()].sort();
  const obj: Record<string, unknown> = {};
  if (opts.metadata) obj.__metadata__ = opts.metadata;
  let pos = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    if (t.data.length !== numel(t.shape)) throw new LenpredError(`tensor has ${t.data.length} values but shape ${JSON.stringify(t.shape)}`, { field: name });
    const bytes = t.data.length * DTYPE_BYTES[dtype]!;
    obj[name] = { dtype, shape: t.shape, data_offsets: [pos, pos + bytes] };
    pos += bytes;
  }
  let json = JSON.stringify(obj);
  const enc = new TextEncoder();
  const padded = Math.ceil((enc.encode(json).length) / 8) * 8;
  json += " ".repeat(padded - enc.encode(json).length);
  const body = enc.encode(json);
  const header = new Uint8Array(8 + body.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(body.length), true);
  header.set(body, 8);
  return { header, names, dataBytes: pos };
}

export function encodeSafetensors(tensors: NamedTensors, opts: WriteOptions = {}): Uint8Array {
  const { header, names, dataBytes } = layout(tensors, opts);
  const out = new Uint8Array(header.length + dataBytes);
  out.set(header, 0);
  let pos = header.length;
  for (const name of names) {
    const bytes = encodeTensor(tensors.get(name)!, opts.dtype ?? "F32");
    out.set(bytes, pos);
    pos += bytes.length;
  }
  return out;
}

/** Write atomically (temp file + rename); streamed tensor by tensor when the file is large. */
export async function writeSafetensors(file: string, tensors: NamedTensors, opts: WriteOptions = {}): Promise<void> {
  const { header, names, dataBytes } = layout(tensors, opts);
  if (header.length + dataBytes < (opts.streamThresholdBytes ?? STREAM_THRESHOLD_BYTES)) {
    await writeFileAtomic(file, encodeSafetensors(tensors, opts));
    return;
  }
  const out = await openAtomicWriteStream(file);
  try {
    await out.write(header);
    for (const name of names) {
      // Copy: the stream may hold the chunk after write() returns, and the caller may mutate its tensors.
      await out.write(Uint8Array.from(encodeTensor(tensors.get(name)!, opts.dtype ?? "F32")));
    }
    await out.commit();
  } catch (e) {
    await out.abort();
    throw e;
  }
}
