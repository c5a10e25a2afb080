/**
 * Vicuna length files: `[{id, L_gt, L_t0.0, L_t0.3, L_t0.5, L_t0.7}, …]` where `id` is the Alpaca position + 1
 * and `L_t<T>` is the length Vicuna-7B generated at temperature T (`L_gt` = the Alpaca answer's length).
 * `prepare --lengths FILE --label max` keeps only the joined records and uses the chosen label as output_tokens.
 */
import { LenpredError } from "../util/errors.js";
import { asObject, describe } from "../util/fields.js";
import { readRecords } from "./sources.js";

/** `max` / `mean` over the temperatures, or one column: `L_gt`, `L_t0.3`, … (`gt`, `t0.3` accepted). */
export type LengthLabel = { kind: "max" | "mean" } | { kind: "column"; column: string };

export function parseLengthLabel(s: string): LengthLabel {
  if (s === "max" || s === "mean") return { kind: s };
  const m = /^(?:L_)?(gt|t\d+(?:\.\d+)?)$/.exec(s);
  if (!m) throw new LenpredError(`unknown --label '${s}': expected max, mean, L_gt or a temperature column like L_t0.3 (or t0.3)`, { field: "--label" });
  return { kind: "column", column: `L_${m[1]}` };
}

export function labelName(l: LengthLabel): string {
  return l.kind === "column" ? l.column : l.kind;
}

const TEMPERATURE_COLUMN = /^L_t\d/;

export interface LengthTable {
  /** id (as a string) → label in tokens (mean is rounded to the nearest integer). */
  byId: Map<string, number>;
  /** Temperature columns seen, e.g. ["L_t0.0", "L_t0.3", "L_t0.5", "L_t0.7"]. */
  temperatures: string[];
}

export async function loadLengths(file: string, label: LengthLabel): Promise<LengthTable> {
  const byId = new Map<string, number>();
  const temps = new Set<string>();
  for await (const { index, value } of readRecords(file)) {
    const place = { file, record: index };
    const obj = asObject(value, place);
    const id = obj.id;
    if (typeof id !== "string" && typeof id !== "number") throw new LenpredError(`expected a string or number id, got ${describe(id)}`, { ...place, field: "id" });
    const num = (field: string): number => {
      const v = obj[field];
      if (v === undefined || v === null) throw new LenpredError("missing required field", { ...place, field });
      if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw new LenpredError(`expected a non-negative number, got ${describe(v)}`, { ...place, field });
      return v;
    };
    let y: number;
    if (label.kind === "column") y = num(label.column);
    else {
      const cols = Object.keys(obj).filter((k) => TEMPERATURE_COLUMN.test(k));
      if (cols.length === 0) throw new LenpredError("no temperature columns (L_t0.0, L_t0.3, …) to take the max/mean of", { ...place, field: "L_t*" });
      const vals = cols.map((c) => { temps.add(c); return num(c); });
      y = label.kind === "max" ? Math.max(...vals) : Math.round(vals.reduce((a, b) => a + b, 0) / vals.length);
    }
    const key = String(id);
    if (byId.has(key)) throw new LenpredError(`duplicate id ${JSON.stringify(id)}`, { ...place, field: "id" });
    byId.set(key, Math.round(y));
  }
  if (byId.size === 0) throw new LenpredError("length file has no records", { file });
  return { byId, temperatures: [...temps].sort() };
}
