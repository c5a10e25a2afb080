import { readFileSync, writeFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../src/model/half.js";
import { decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors } from "../src/model/safetensors.js";
import type { NamedTensors } from "../src/engine/tensors.js";
import { LenpredError } from "../src/util/errors.js";
import { tempDir } from "./helpers/tmp.js";

/** Hand-built file: header JSON + raw bytes, independent of the writer under test. */
function handMade(header: object, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function sample(): NamedTensors {
  const a = new Float32Array(6).map((_, i) => (i - 2.5) * 0.37);
  const b = new Float32Array([1, -0.5, 65504, 1e-6, -3.140625]);
  return new Map([
    ["z.last", { shape: [2, 3], data: a }],
    ["a.first", { shape: [5], data: b }],
    ["empty", { shape: [0, 4], data: new Float32Array(0) }],
  ]);
}

describe("half-precision conversions", () => {
  it("match IEEE binary16 bit patterns, rounding to nearest even", () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(-2)).toBe(0xc000);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // rounds up to +Inf
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(f32ToF16Bits(2 ** -25)).toBe(0x0000); // tie -> even (0)
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(0x0002); // tie -> even (2)
    expect(f32ToF16Bits(2 ** -14)).toBe(0x0400); // smallest normal
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even mantissa
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f16BitsToF32(f32ToF16Bits(NaN))).toBeNaN();
    expect(f16BitsToF32(0x3555)).toBeCloseTo(0.33325195, 8);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
  });

  it("round-trip every finite half exactly", () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = f16BitsToF32(h);
      if (Number.isNaN(v)) continue;
      expect(f32ToF16Bits(v)).toBe(h);
    }
  });

  it("bfloat16 truncates the float32 mantissa with round-to-nearest-even", () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(f32ToBf16Bits(-1)).toBe(0xbf80);
    expect(bf16BitsToF32(f32ToBf16Bits(1 + 2 ** -8))).toBe(1); // tie -> even
    expect(bf16BitsToF32(f32ToBf16Bits(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6);
    expect(bf16BitsToF32(f32ToBf16Bits(3.14159))).toBe(3.140625);
    expect(bf16BitsToF32(f32ToBf16Bits(NaN))).toBeNaN();
  });
});

describe("safetensors", () => {
  const dir = tempDir();

  it("reads a hand-made F32 + F16 + BF16 file", async () => {
    const f32 = new Float32Array([1.5, -2]);
    const data = new Uint8Array(8 + 4 + 2);
    data.set(new Uint8Array(f32.buffer), 0);
    new DataView(data.buffer).setUint16(8, 0x3c00, true); // F16 1.0
    new DataView(data.buffer).setUint16(10, 0xc000, true); // F16 -2.0
    new DataView(data.buffer).setUint16(12, 0x3fc0, true); // BF16 1.5
    const buf = handMade({
      __metadata__: { format: "pt" },
      h: { dtype: "F16", shape: [2, 1], data_offsets: [8, 12] },
      w: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "BF16", shape: [], data_offsets: [12, 14] },
    }, data);
    const r = await decodeSafetensors(buf);
    expect([...r.tensors.get("w")!.data]).toEqual([1.5, -2]);
    expect([...r.tensors.get("h")!.data]).toEqual([1, -2]);
    expect(r.tensors.get("h")!.shape).toEqual([2, 1]);
    expect([...r.tensors.get("b")!.data]).toEqual([1.5]);
    expect(r.dtypes.get("b")).toBe("BF16");
    expect(r.metadata).toEqual({ format: "pt" });
  });

  for (const dtype of ["F32", "F16", "BF16"] as const) {
    it(`writes ${dtype} with a header the hand parser reads, and round-trips`, async () => {
      const file = join(dir, `rt-${dtype}.safetensors`);
      const t = sample();
      await writeSafetensors(file, t, { dtype, metadata: { format: "pt" } });
      const bytes = readFileSync(file);
      const n = Number(bytes.readBigUInt64LE(0));
      expect(n % 8).toBe(0); // padded like the reference writer
      const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8"));
      expect(header.__metadata__).toEqual({ format: "pt" });
      expect(header["a.first"].dtype).toBe(dtype);
      expect(header["z.last"].shape).toEqual([2, 3]);
      const r = await readSafetensors(file);
      for (const [name, src] of t) {
        const got = r.tensors.get(name)!;
        expect(got.shape).toEqual(src.shape);
        for (let i = 0; i < src.data.length; i++) {
          const v = src.data[i]!;
          const tol = dtype === "F32" ? 0 : dtype === "F16" ? Math.abs(v) * 2 ** -11 : Math.abs(v) * 2 ** -8;
          expect(Math.abs(got.data[i]! - v)).toBeLessThanOrEqual(tol + (dtype === "F16" ? 2 ** -25 : 0));
        }
      }
      // Streamed reading/writing gives identical results.
      const streamed = join(dir, `rt-${dtype}-streamed.safetensors`);
      await writeSafetensors(streamed, t, { dtype, metadata: { format: "pt" }, streamThresholdBytes: 0 });
      expect(readFileSync(streamed).equals(bytes)).toBe(true);
      const r2 = await readSafetensors(streamed, { streamThresholdBytes: 0 });
      for (const [name, tt] of r.tensors) expect([...r2.tensors.get(name)!.data]).toEqual([...tt.data]);
    });
  }

  const bad: Array<[string, () => Uint8Array, RegExp]> = [
    ["too short", () => new Uint8Array(4), /shorter than/],
    ["header longer than file", () => { const b = new Uint8Array(16); new DataView(b.buffer).setBigUint64(0, 1000n, true); return b; }, /does not fit/],
    ["invalid JSON", () => { const j = new TextEncoder().encode("{oops"); const b = new Uint8Array(8 + j.length); new DataView(b.buffer).setBigUint64(0, BigInt(j.length), true); b.set(j, 8); return b; }, /not valid UTF-8 JSON/],
    ["unknown dtype", () => handMade({ w: { dtype: "F8", shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), /field 'w'.*unknown dtype/],
    ["size mismatch", () => handMade({ w: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4)), /field 'w'.*needs 8/],
    ["gap", () => handMade({ w: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), /field 'w'.*expected 0/],
    ["overlap", () => handMade({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), /non-contiguous/],
    ["trailing bytes", () => handMade({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(12)), /cover 4 bytes but the data section has 12/],
    ["bad shape", () => handMade({ w: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), /field 'w'.*shape/],
    ["bad metadata", () => handMade({ __metadata__: { format: 1 } }, new Uint8Array(0)), /__metadata__/],
  ];
  for (const [name, make, re] of bad) {
    it(`rejects a file with ${name}, naming the file`, async () => {
      const file = join(dir, `bad-${name.replace(/ /g, "-")}.safetensors`);
      writeFileSync(file, make());
      const err = await readSafetensors(file).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LenpredError);
      expect((err as Error).message).toContain(file);
      expect((err as Error).message).toMatch(re);
    });
  }

  it("rejects integer tensors unless asked to skip them", async () => {
    const buf = handMade({ position_ids: { dtype: "I64", shape: [2], data_offsets: [0, 16] }, w: { dtype: "F32", shape: [1], data_offsets: [16, 20] } }, new Uint8Array(20));
    await expect(decodeSafetensors(buf)).rejects.toThrow(/position_ids.*I64 is not supported/);
    const r = await decodeSafetensors(buf, { skipNonFloat: true });
    expect(r.skipped).toEqual(["position_ids"]);
    expect([...r.tensors.keys()]).toEqual(["w"]);
  });

  it("leaves no temporary file when writing fails", async () => {
    const file = join(dir, "fail", "x.safetensors");
    const t: NamedTensors = new Map([["w", { shape: [3], data: new Float32Array(2) }]]);
    await expect(writeSafetensors(file, t)).rejects.toThrow(/field 'w'.*2 values/);
    const t2 = sample();
    await expect(writeSafetensors(join(dir, "fail2", "y.safetensors"), t2, { streamThresholdBytes: 0 })).resolves.toBeUndefined();
    expect(readdirSync(join(dir, "fail2"))).toEqual(["y.safetensors"]);
  });

  it("encodes in memory exactly what it writes", async () => {
    const file = join(dir, "mem.safetensors");
    await writeSafetensors(file, sample(), { dtype: "F16" });
    expect(Buffer.from(encodeSafetensors(sample(), { dtype: "F16" })).equals(readFileSync(file))).toBe(true);
  });
});

describe("training checkpoints", () => {
  it("reads an optimizer.safetensors written by the former in-memory codec (train/tensor-file.ts) bit-exactly", async () => {
    // test/fixtures/legacy-optimizer.safetensors was written by that codec before it was removed.
    const { tensors, metadata } = await readSafetensors(join(import.meta.dirname, "fixtures", "legacy-optimizer.safetensors"));
    expect(metadata).toEqual({});
    const want: [string, number[], number[]][] = [
      ["m.distilbert.embeddings.word_embeddings.weight", [2, 3], [1 / 3, -0, 1e-40, -2.5, 3.4e38, 7]],
      ["p.classifier.bias", [3], [0.1, -0.2, 0.3]],
      ["v.classifier.bias", [3], [1e-8, 2e-8, 3e-8]],
    ];
    expect([...tensors.keys()].sort()).toEqual(want.map((w) => w[0]));
    for (const [name, shape, values] of want) {
      const t = tensors.get(name)!;
      expect(t.shape).toEqual(shape);
      expect([...new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length)]).toEqual([...new Uint32Array(Float32Array.from(values).buffer)]);
    }
  });
});
