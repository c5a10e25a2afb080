/**
 * Point ONNX initializers at bytes in another file (ONNX "external data") instead of embedding them: a
 * serialized ModelProto is rewritten so that chosen initializers lose `raw_data` and gain
 * `external_data = {location, offset, length}` + `data_location = EXTERNAL`. lenpred uses it to let
 * `model.onnx` read its weights straight out of `model.safetensors` (safetensors stores raw little-endian
 * tensors, exactly ONNX's raw_data layout), so a model directory holds the weights once.
 * Only the wire format is touched: ModelProto.graph (7) → GraphProto.initializer (5) → TensorProto
 * (name 8, raw_data 9, external_data 13, data_location 14); everything else is copied byte for byte.
 */
import { LenpredError } from "../util/errors.js";

export interface ExternalRef {
  /** Path relative to the model file (ORT refuses paths that leave the model's directory). */
  location: string;
  offset: number;
  length: number;
}

interface Field {
  num: number;
  wire: number;
  /** The whole encoded field (tag + payload). */
  bytes: Uint8Array;
  /** Payload of a length-delimited field. */
  payload?: Uint8Array;
}

function readVarint(buf: Uint8Array, pos: number): [number, number] {
  let result = 0;
  let mul = 1;
  for (;;) {
    if (pos >= buf.length) throw new LenpredError("truncated ONNX protobuf (varint)");
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if (!(b & 0x80)) return [result, pos];
    mul *= 128;
  }
}

function parseFields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    const [tag, p1] = readVarint(buf, pos);
    pos = p1;
    const wire = tag & 7;
    const num = Math.floor(tag / 8);
    let payload: Uint8Array | undefined;
    if (wire === 0) [, pos] = readVarint(buf, pos);
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const [len, p2] = readVarint(buf, pos);
      payload = buf.subarray(p2, p2 + len);
      pos = p2 + len;
    } else throw new LenpredError(`unsupported protobuf wire type ${wire} in ONNX model`);
    if (pos > buf.length) throw new LenpredError("truncated ONNX protobuf");
    out.push({ num, wire, bytes: buf.subarray(start, pos), payload });
  }
  return out;
}

function varint(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function lenField(num: number, payload: Uint8Array): Uint8Array {
  const head = [...varint(num * 8 + 2), ...varint(payload.length)];
  const out = new Uint8Array(head.length + payload.length);
  out.set(head, 0);
  out.set(payload, head.length);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

const utf8 = new TextEncoder();
const entry = (k: string, v: string) => concat([lenField(1, utf8.encode(k)), lenField(2, utf8.encode(v))]);

function rewriteTensor(t: Uint8Array, refs: Map<string, ExternalRef>, done: Set<string>): Uint8Array {
  const fields = parseFields(t);
  const nameField = fields.find((f) => f.num === 8 && f.wire === 2);
  const name = nameField ? new TextDecoder().decode(nameField.payload) : undefined;
  const ref = name === undefined ? undefined : refs.get(name);
  if (!ref) return t;
  const raw = fields.find((f) => f.num === 9);
  if (!raw || raw.payload!.length !== ref.length) {
    throw new LenpredError(`initializer '${name}' has ${raw?.payload?.length ?? 0} bytes of raw data, the external range has ${ref.length}`);
  }
  done.add(name!);
  return concat([
    ...fields.filter((f) => f.num !== 9).map((f) => f.bytes),
    lenField(13, entry("location", ref.location)),
    lenField(13, entry("offset", String(ref.offset))),
    lenField(13, entry("length", String(ref.length))),
    Uint8Array.of(14 * 8, 1), // data_location = EXTERNAL
  ]);
}

/** Rewrite `model` so the initializers named in `refs` read their bytes from the external ranges. */
export function externalizeInitializers(model: Uint8Array, refs: Map<string, ExternalRef>): Uint8Array {
  const done = new Set<string>();
  const parts = parseFields(model).map((f) => {
    if (f.num !== 7 || f.wire !== 2) return f.bytes;
    const graph = parseFields(f.payload!).map((gf) => (gf.num === 5 && gf.wire === 2 ? lenField(5, rewriteTensor(gf.payload!, refs, done)) : gf.bytes));
    return lenField(7, concat(graph));
  });
  const missing = [...refs.keys()].filter((k) => !done.has(k));
  if (missing.length) throw new LenpredError(`no initializer named ${missing.slice(0, 3).join(", ")} in the ONNX model`);
  return concat(parts);
}

/** An embedded initializer as stored: ONNX TensorProto data_type, dims and raw little-endian bytes. */
export interface RawInitializer {
  dataType: number;
  dims: number[];
  raw: Uint8Array;
}

/**
 * The initializers of a serialized ModelProto that carry `raw_data` (what lenpred writes), by name: lets
 * tests and tools inspect an exported file (e.g. the int8 weights) without an ONNX library.
 */
export function readInitializers(model: Uint8Array): Map<string, RawInitializer> {
  const out = new Map<string, RawInitializer>();
  for (const f of parseFields(model)) {
    if (f.num !== 7 || f.wire !== 2) continue;
    for (const gf of parseFields(f.payload!)) {
      if (gf.num !== 5 || gf.wire !== 2) continue;
      let name: string | undefined;
      let raw: Uint8Array | undefined;
      let dataType = 0;
      const dims: number[] = [];
      for (const tf of parseFields(gf.payload!)) {
        if (tf.num === 8) name = new TextDecoder().decode(tf.payload);
        else if (tf.num === 9) raw = tf.payload;
        else if (tf.num === 2) dataType = readVarint(tf.bytes, 1)[0];
        else if (tf.num === 1 && tf.wire === 0) dims.push(readVarint(tf.bytes, 1)[0]);
        else if (tf.num === 1 && tf.wire === 2) for (let p = 0; p < tf.payload!.length;) { const [v, q] = readVarint(tf.payload!, p); dims.push(v); p = q; }
      }
      if (name !== undefined && raw) out.set(name, { dataType, dims, raw });
    }
  }
  return out;
}
