/**
 * A small protobuf encoder for the handful of ONNX messages the engine emits (ModelProto, GraphProto,
 * NodeProto, AttributeProto, TensorProto, ValueInfoProto). Field numbers follow onnx/onnx.proto3; writing
 * them directly keeps serialization a page long and avoids loading a 20k-line schema at run time.
 */

/** Growable byte buffer with the protobuf wire primitives. */
class Writer {
  private buf = new Uint8Array(1024);
  len = 0;

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  varint(v: number | bigint): void {
    // Negative int64 values are encoded as 10-byte two's complement varints.
    let x = BigInt.asUintN(64, BigInt(v));
    this.ensure(10);
    if (x < 0x80n) {
      this.buf[this.len++] = Number(x);
      return;
    }
    while (x >= 0x80n) {
      this.buf[this.len++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.len++] = Number(x);
  }

  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  float32(v: number): void {
    this.ensure(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, v, true);
    this.len += 4;
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

const enc = new TextEncoder();

/** A message is a list of field writers; nested messages are encoded bottom-up into bytes. */
export class Msg {
  private w = new Writer();

  int(field: number, v: number | bigint | undefined): this {
    if (v === undefined) return this;
    this.w.tag(field, 0);
    this.w.varint(v);
    return this;
  }

  ints(field: number, vs: readonly (number | bigint)[]): this {
    // Unpacked repeated encoding: accepted for both proto2 and proto3 readers.
    for (const v of vs) this.int(field, v);
    return this;
  }

  float(field: number, v: number): this {
    this.w.tag(field, 5);
    this.w.float32(v);
    return this;
  }

  floats(field: number, vs: readonly number[]): this {
    for (const v of vs) this.float(field, v);
    return this;
  }

  str(field: number, s: string | undefined): this {
    if (s === undefined) return this;
    return this.raw(field, enc.encode(s));
  }

  raw(field: number, b: Uint8Array): this {
    this.w.tag(field, 2);
    this.w.bytes(b);
    return this;
  }

  msg(field: number, m: Msg | undefined): this {
    if (m === undefined) return this;
    return this.raw(field, m.finish());
  }

  finish(): Uint8Array {
    return this.w.finish();
  }
}

/** ONNX TensorProto.DataType codes. */
export const ONNX_DTYPE = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  uint32: 12,
  bool: 9,
  float16: 10,
  float64: 11,
} as const;
