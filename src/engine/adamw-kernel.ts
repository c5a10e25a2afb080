/**
 * The AdamW update as a WebAssembly SIMD loop (f32x4), hand-assembled below: one pass over p, g, m, v
 * with 4 lanes per instruction, in float32 like PyTorch. The JS scalar loop is compute-bound (sqrt and
 * divide per element, in float64); this is ~memory-bound. Buffers live in one WebAssembly.Memory
 * (`AdamWArena`), and ort tensors view them directly, so nothing is copied between the graph and the update.
 */
import { LenpredError } from "../util/errors.js";

// ---------------------------------------------------------------- a few bytes of wasm

const leb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const vec = (items: number[][]): number[] => [...leb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];
const str = (s: string): number[] => [...leb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];

const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;
const simd = (op: number): number[] => [0xfd, ...leb(op)];
const LOAD = (local: number): number[] => [0x20, local, ...simd(0x00), 4, 0]; // v128.load align=16 offset=0
const GET = (l: number): number[] => [0x20, ...leb(l)];
const SET = (l: number): number[] => [0x21, ...leb(l)];
const ADD = simd(0xe4), SUB = simd(0xe5), MUL = simd(0xe6), DIV = simd(0xe7), SQRT = simd(0xe3), SPLAT = simd(0x13);
const STORE = simd(0x0b);

/**
 * adamw(p, g, m, v, end: i32 byte pointers; b1, b2, c1, c2, decay, stepSize, epsHat: f32)
 *   m ← b1·m + c1·g;  v ← b2·v + c2·g²;  p ← p·decay − stepSize·m / (√v + epsHat)
 * (c1 = (1−b1)·clip, c2 = (1−b2)·clip², so clipping costs nothing extra.)
 */
function buildModule(): Uint8Array<ArrayBuffer> {
  // params 0..4 i32 (p g m v end), 5..11 f32; locals 12..18 splats, 19 gi, 20 mi, 21 vi (v128)
  const [P, G, M, Vv, END] = [0, 1, 2, 3, 4];
  const body: number[] = [];
  for (let k = 0; k < 7; k++) body.push(...GET(5 + k), ...SPLAT, ...SET(12 + k));
  const [B1, B2, C1, C2, DEC, SS, EPS, GI, MI, VI] = [12, 13, 14, 15, 16, 17, 18, 19, 20, 21];
  body.push(0x02, 0x40, 0x03, 0x40); // block, loop
  body.push(...GET(P), ...GET(END), 0x4f, 0x0d, 1); // i32.ge_u; br_if 1
  body.push(...LOAD(G), ...SET(GI));
  body.push(...GET(M), ...LOAD(M), ...GET(B1), ...MUL, ...GET(GI), ...GET(C1), ...MUL, ...ADD, 0x22, MI, ...STORE, 4, 0); // local.tee mi
  body.push(...GET(Vv), ...LOAD(Vv), ...GET(B2), ...MUL, ...GET(GI), ...GET(GI), ...MUL, ...GET(C2), ...MUL, ...ADD, 0x22, VI, ...STORE, 4, 0);
  body.push(...GET(P), ...LOAD(P), ...GET(DEC), ...MUL, ...GET(MI), ...GET(SS), ...MUL, ...GET(VI), ...SQRT, ...GET(EPS), ...ADD, ...DIV, ...SUB, ...STORE, 4, 0);
  for (const l of [P, G, M, Vv]) body.push(...GET(l), 0x41, 16, 0x6a, ...SET(l)); // l += 16
  body.push(0x0c, 0, 0x0b, 0x0b); // br 0; end loop; end block
  body.push(0x0b); // end function
  const locals = vec([[...leb(7), V128], [...leb(3), V128]]);
  const code = [...locals, ...body];

  const type = section(1, vec([[0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [F32], [F32], [F32], [F32], [F32], [F32], [F32]]), 0]]));
  const memLimits = [0x00, ...leb(1)]; // imported memory, at least 1 page, no maximum
  const imports = section(2, vec([[...str("env"), ...str("mem"), 0x02, ...memLimits]]));
  const funcs = section(3, vec([[0]]));
  const exps = section(7, vec([[...str("adamw"), 0x00, 0]]));
  const codeSec = section(10, vec([[...leb(code.length), ...code]]));
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...type, ...imports, ...funcs, ...exps, ...codeSec]);
}

type Kernel = (p: number, g: number, m: number, v: number, end: number, b1: number, b2: number, c1: number, c2: number, decay: number, stepSize: number, epsHat: number) => void;

export interface AdamWScalars {
  beta1: number;
  beta2: number;
  clip: number;
  decay: number;
  stepSize: number;
  epsHat: number;
}

/** Per-parameter views into the arena: params, gradients, first and second moments. */
export interface ArenaSlot {
  p: Float32Array;
  g: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB: wasm32's limit

/** One WebAssembly.Memory holding p, g, m, v for every parameter, and the SIMD update over it. */
export class AdamWArena {
  readonly slots: ArenaSlot[];
  private constructor(
    private readonly kernel: Kernel,
    readonly memory: WebAssembly.Memory,
    slots: ArenaSlot[],
  ) {
    this.slots = slots;
  }

  /** Bytes the arena needs for these parameter sizes (4 arrays each, 16-byte aligned). */
  static bytesFor(sizes: readonly number[]): number {
    return sizes.reduce((a, n) => a + 4 * roundUp(n * 4, 16), 0);
  }

  /** Undefined when the parameters do not fit in wasm32 memory (the caller falls back to JS). */
  static create(sizes: readonly number[]): AdamWArena | undefined {
    if (typeof WebAssembly === "undefined") return undefined;
    const bytes = AdamWArena.bytesFor(sizes) + PAGE;
    const pages = Math.ceil(bytes / PAGE);
    if (pages > MAX_PAGES) return undefined;
    const memory = new WebAssembly.Memory({ initial: pages });
    const mod = new WebAssembly.Module(buildModule());
    const inst = new WebAssembly.Instance(mod, { env: { mem: memory } });
    let off = 16; // keep 0 unused
    const slots = sizes.map((n) => {
      const view = (): Float32Array => {
        const a = new Float32Array(memory.buffer, off, n);
        off += roundUp(n * 4, 16);
        return a;
      };
      return { p: view(), g: view(), m: view(), v: view() };
    });
    return new AdamWArena(inst.exports.adamw as Kernel, memory, slots);
  }

  /** Update slot i in place. Padding lanes past the end hold zeros and stay finite. */
  update(i: number, s: AdamWScalars): void {
    const slot = this.slots[i];
    if (!slot) throw new LenpredError(`AdamWArena: no slot ${i}`);
    const base = (a: Float32Array): number => a.byteOffset;
    const end = base(slot.p) + roundUp(slot.p.length * 4, 16);
    this.kernel(base(slot.p), base(slot.g), base(slot.m), base(slot.v), end,
      s.beta1, s.beta2, (1 - s.beta1) * s.clip, (1 - s.beta2) * s.clip * s.clip, s.decay, s.stepSize, s.epsHat);
  }
}

function roundUp(n: number, k: number): number {
  return Math.ceil(n / k) * k;
}
