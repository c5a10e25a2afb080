/**
 * Static shape arithmetic over dims that are numbers or named dynamic axes. A named dim stands for one unknown
 * size >= 1; products of names ("batch*seq") come out of reshapes. Good enough for broadcasting and for the
 * autodiff's broadcast reductions; anything ambiguous is an error at build time, not a silent wrong answer.
 */
import { LenpredError } from "../util/errors.js";
import type { Dim, Shape } from "./graph.js";

export function normAxis(axis: number, rank: number, op = "op"): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new LenpredError(`${op}: axis ${axis} out of range for rank ${rank}`);
  return a;
}

export function fmt(s: Shape): string {
  return `[${s.join(", ")}]`;
}

/** Numpy-style broadcast of two shapes. */
export function broadcastShapes(a: Shape, b: Shape, op = "broadcast"): Dim[] {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)]!;
    const db = i < n - b.length ? 1 : b[i - (n - b.length)]!;
    out.push(broadcastDim(da, db, () => `${op}: cannot broadcast ${fmt(a)} with ${fmt(b)}`));
  }
  return out;
}

function broadcastDim(a: Dim, b: Dim, msg: () => string): Dim {
  if (a === b) return a;
  if (a === 1) return b;
  if (b === 1) return a;
  if (typeof a === "number" && typeof b === "number") throw new LenpredError(msg());
  // A named dim against a number > 1: the number is the only consistent size.
  if (typeof a === "number") return a;
  if (typeof b === "number") return b;
  // Two different names: products that are equal as multisets are the same size.
  if (canonical(a) === canonical(b)) return a;
  throw new LenpredError(msg() + " (two different dynamic axes)");
}

interface Monomial {
  c: number;
  syms: string[];
}

function mono(d: Dim): Monomial {
  if (typeof d === "number") return { c: d, syms: [] };
  let c = 1;
  const syms: string[] = [];
  for (const part of d.split("*")) {
    const p = part.trim();
    if (/^\d+$/.test(p)) c *= Number(p);
    else syms.push(p);
  }
  return { c, syms: syms.sort() };
}

function fromMono(m: Monomial): Dim {
  if (m.syms.length === 0) return m.c;
  return (m.c === 1 ? [] : [String(m.c)]).concat(m.syms).join("*");
}

function canonical(d: Dim): string {
  return String(fromMono(mono(d)));
}

/** Product of dims as a dim. */
export function dimProduct(dims: readonly Dim[]): Dim {
  const m: Monomial = { c: 1, syms: [] };
  for (const d of dims) {
    const x = mono(d);
    m.c *= x.c;
    m.syms.push(...x.syms);
  }
  m.syms.sort();
  return fromMono(m);
}

/** Exact quotient of two dims, or undefined when it is not expressible. */
function dimQuotient(num: Dim, den: Dim): Dim | undefined {
  const a = mono(num);
  const b = mono(den);
  if (b.c === 0 || a.c % b.c !== 0) return undefined;
  const syms = [...a.syms];
  for (const s of b.syms) {
    const i = syms.indexOf(s);
    if (i < 0) return undefined;
    syms.splice(i, 1);
  }
  return fromMono({ c: a.c / b.c, syms });
}

/** Are two dims known to be the same size? */
export function sameDim(a: Dim, b: Dim): boolean {
  return a === b || canonical(a) === canonical(b);
}

/** ONNX Reshape output shape (allowzero = 0: 0 copies the input dim, -1 is inferred). */
export function reshapeShape(input: Shape, spec: readonly number[], op = "reshape"): Dim[] {
  const out: (Dim | undefined)[] = spec.map((s, i) => {
    if (s === 0) {
      if (i >= input.length) throw new LenpredError(`${op}: 0 at position ${i} but input has rank ${input.length}`);
      return input[i]!;
    }
    if (s === -1) return undefined;
    if (!Number.isInteger(s) || s < 0) throw new LenpredError(`${op}: bad target dim ${s}`);
    return s;
  });
  const holes = out.filter((d) => d === undefined).length;
  if (holes > 1) throw new LenpredError(`${op}: at most one -1 allowed in ${fmt(spec)}`);
  if (holes === 1) {
    const known = out.filter((d): d is Dim => d !== undefined);
    const q = dimQuotient(dimProduct(input), dimProduct(known));
    if (q === undefined) throw new LenpredError(`${op}: cannot infer -1 reshaping ${fmt(input)} to ${fmt(spec)}`);
    return out.map((d) => (d === undefined ? q : d));
  }
  const res = out as Dim[];
  const total = dimProduct(input);
  const got = dimProduct(res);
  if (typeof total === "number" && typeof got === "number" && total !== got) {
    throw new LenpredError(`${op}: cannot reshape ${fmt(input)} (${total} elements) to ${fmt(spec)}`);
  }
  return res;
}

/** Size of a slice [start, end) with step 1 along a dim, as a dim. */
export function sliceDim(d: Dim, start: number, end: number): Dim {
  if (typeof d === "number") {
    const s = clamp(start < 0 ? start + d : start, 0, d);
    const e = clamp(end < 0 ? end + d : end, 0, d);
    return Math.max(0, e - s);
  }
  if (start >= 0 && end >= 0 && end < 2 ** 53 - 1 && end >= start) return end - start; // assumes d >= end
  if (start >= 0 && end >= 2 ** 31 - 1) return start === 0 ? d : `${d}-${start}`;
  return `${d}[${start}:${end}]`;
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}
