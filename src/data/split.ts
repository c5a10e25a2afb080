/** Deterministic seeded train/val/test assignment with exact sizes (a seeded permutation of record positions). */
import { LenpredError } from "../util/errors.js";
import { createRng, shuffleInPlace } from "../util/rng.js";
import type { SplitName } from "./records.js";

export const SPLIT_CODES: readonly SplitName[] = ["train", "val", "test"];

export interface SplitFractions {
  val: number;
  test: number;
}

function validateFractions(f: SplitFractions): void {
  for (const [k, v] of Object.entries(f)) {
    if (!Number.isFinite(v) || v < 0 || v >= 1) throw new LenpredError(`--${k}-fraction must be in [0, 1), got ${v}`, { field: `--${k}-fraction` });
  }
  if (f.val + f.test >= 1) throw new LenpredError(`val + test fractions must leave some training data (got ${f.val} + ${f.test})`, { field: "--val-fraction" });
}

/**
 * Code per record (0 = train, 1 = val, 2 = test): val gets round(n·val) records, test round(n·test), chosen by a
 * Fisher–Yates shuffle seeded with `seed`. Same (n, fractions, seed) → same split, on every machine.
 */
export function assignSplits(n: number, f: SplitFractions, seed: number | string): Uint8Array {
  validateFractions(f);
  const nVal = Math.round(n * f.val);
  const nTest = Math.round(n * f.test);
  if (n - nVal - nTest < 1) throw new LenpredError(`${n} records are too few for a training split with val ${f.val} and test ${f.test}`);
  const order = Array.from({ length: n }, (_, i) => i);
  shuffleInPlace(order, createRng(seed));
  const codes = new Uint8Array(n);
  for (let k = 0; k < nVal; k++) codes[order[k]!] = 1;
  for (let k = nVal; k < nVal + nTest; k++) codes[order[k]!] = 2;
  return codes;
}
