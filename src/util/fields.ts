/** Typed field access for untrusted records: every failure names file, record and field. */
import { LenpredError, type ErrorPlace } from "./errors.js";

export function asObject(value: unknown, place: ErrorPlace): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new LenpredError(`expected a JSON object, got ${describe(value)}`, place);
  }
  return value as Record<string, unknown>;
}

export function getString(obj: Record<string, unknown>, field: string, place: ErrorPlace, opts: { optional?: boolean } = {}): string | undefined {
  const v = obj[field];
  if (v === undefined || v === null) {
    if (opts.optional) return undefined;
    throw new LenpredError("missing required field", { ...place, field });
  }
  if (typeof v !== "string") throw new LenpredError(`expected a string, got ${describe(v)}`, { ...place, field });
  return v;
}

export function requireString(obj: Record<string, unknown>, field: string, place: ErrorPlace): string {
  return getString(obj, field, place) as string;
}

export function getNonNegInt(obj: Record<string, unknown>, field: string, place: ErrorPlace, opts: { optional?: boolean } = {}): number | undefined {
  const v = obj[field];
  if (v === undefined || v === null) {
    if (opts.optional) return undefined;
    throw new LenpredError("missing required field", { ...place, field });
  }
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new LenpredError(`expected a non-negative integer, got ${describe(v)}`, { ...place, field });
  }
  return v;
}

export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return v.length > 40 ? `a string "${v.slice(0, 40)}..."` : `a string "${v}"`;
  return `${typeof v} ${typeof v === "object" ? "" : String(v)}`.trim();
}
