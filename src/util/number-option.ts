/**
 * Numeric command-line options: one parser for every subcommand, so a bad value is always a LenpredError
 * naming the flag (exit 2, no stack trace, no help dump).
 */
import { LenpredError } from "./errors.js";

export interface NumberBounds {
  int?: boolean;
  min?: number;
  max?: number;
  /** `max` itself is not allowed (e.g. fractions in [0, 1)). */
  maxExclusive?: boolean;
}

export function parseNumberOption(flag: string, value: string, b: NumberBounds = {}): number {
  const x = Number(value);
  const ok = value.trim() !== "" && Number.isFinite(x) && (!b.int || Number.isInteger(x))
    && (b.min === undefined || x >= b.min) && (b.max === undefined || (b.maxExclusive ? x < b.max : x <= b.max));
  if (!ok) {
    const bounds = [
      b.min !== undefined ? `>= ${b.min}` : undefined,
      b.max !== undefined ? `${b.maxExclusive ? "<" : "<="} ${b.max}` : undefined,
    ].filter(Boolean).join(" and ");
    throw new LenpredError(`${flag} expects ${b.int ? "an integer" : "a number"}${bounds ? " " + bounds : ""}, got '${value}'`);
  }
  return x;
}

/** A commander argument parser for `flag`. */
export const numberOption = (flag: string, b: NumberBounds = {}) => (value: string): number => parseNumberOption(flag, value, b);

/** A quantile level strictly inside (0, 1), e.g. `--quantile 0.9`: one parser for every command that takes one. */
export function parseQuantileOption(flag: string, value: string): number {
  const q = Number(value);
  if (!(q > 0 && q < 1)) throw new LenpredError(`${flag} must be in (0, 1), got '${value}'`);
  return q;
}

/** A commander argument parser for a quantile flag. */
export const quantileOption = (flag: string) => (value: string): number => parseQuantileOption(flag, value);
