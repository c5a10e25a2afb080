/**
 * The predictions JSONL: one line per record of a prepared split, joined to it by `index` (the 0-based record
 * number). The one owner of that format: `predict --file`, `baseline` and `replay` write it with
 * `predictionLine` / `PredictionsWriter` (one rounding rule), `eval` and `simulate` read it with
 * `readPredictionsFile` (one validation).
 *
 *   {index, id?, bucket, upperBound, expectedTokens, probabilities?, reserveTokens?, output_tokens?, ...}
 *
 * `reserveTokens` (calibrated quantile from online learning) and `output_tokens` (the observed length, from
 * `replay`) are optional; a reader that uses one asks for it all-or-none. Other fields are passed through.
 */
import { bucketCount, type BucketScheme } from "./buckets.js";
import { openAtomicWriteStream } from "../util/atomic.js";
import { LenpredError, type ErrorPlace } from "../util/errors.js";
import { asObject, describe, getNonNegInt } from "../util/fields.js";
import { readJsonl, toJsonlLine } from "../util/jsonl.js";

export interface PredictionLine {
  index: number;
  id?: string | number;
  bucket: number;
  upperBound: number;
  expectedTokens: number;
  probabilities?: number[];
  reserveTokens?: number;
  output_tokens?: number;
}

/** What a writer needs from a prediction (a `Prediction` or an online prediction). */
export interface PredictionLike {
  bucket: number;
  upperBound: number;
  expectedTokens: number;
  probabilities?: number[];
  reserveTokens?: number;
}

// ---- writing ----------------------------------------------------------------------------------------------

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * The rounding rule: expectedTokens to 3 decimals, probabilities to 6; reserveTokens as given (rounding a
 * reservation down could under-reserve); other fields untouched.
 */
function roundPredictionLine<T extends PredictionLike>(p: T): T {
  const out = { ...p, expectedTokens: round(p.expectedTokens, 3) };
  if (p.probabilities) out.probabilities = p.probabilities.map((x) => round(x, 6));
  return out;
}

/** One line's object: index, id (when known), the prediction (probabilities unless `probabilities: false`). */
export function predictionLine(index: number, id: string | number | undefined, p: PredictionLike, o: { probabilities?: boolean } = {}): PredictionLine {
  const rec: PredictionLine = { index, ...(id !== undefined ? { id } : {}), bucket: p.bucket, upperBound: p.upperBound, expectedTokens: p.expectedTokens };
  if (o.probabilities !== false && p.probabilities) rec.probabilities = p.probabilities;
  if (p.reserveTokens !== undefined) rec.reserveTokens = p.reserveTokens;
  return roundPredictionLine(rec);
}

/** JSONL text of already-built lines (rounded by the rule). */
export function formatPredictionLines(lines: readonly PredictionLike[]): string {
  let s = "";
  for (const l of lines) s += toJsonlLine(roundPredictionLine(l));
  return s;
}

/** A predictions file written atomically: nothing appears at `file` unless `commit` is reached. */
export class PredictionsWriter {
  private constructor(private readonly w: Awaited<ReturnType<typeof openAtomicWriteStream>>) {}
  static async open(file: string): Promise<PredictionsWriter> { return new PredictionsWriter(await openAtomicWriteStream(file)); }
  async write(lines: readonly PredictionLike[]): Promise<void> { await this.w.write(formatPredictionLines(lines)); }
  commit(): Promise<void> { return this.w.commit(); }
  abort(): Promise<void> { return this.w.abort(); }
}

/** Write all lines to `file` atomically. */
export async function writePredictionsFile(file: string, lines: readonly PredictionLike[]): Promise<void> {
  const w = await PredictionsWriter.open(file);
  try {
    await w.write(lines);
    await w.commit();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

// ---- reading ----------------------------------------------------------------------------------------------

function finiteNumber(o: Record<string, unknown>, field: string, place: ErrorPlace, min = 0): number {
  const v = o[field];
  if (v === undefined || v === null) throw new LenpredError("missing required field", { ...place, field });
  if (typeof v !== "number" || !Number.isFinite(v) || v < min) {
    throw new LenpredError(`expected a finite number >= ${min}, got ${describe(v)}`, { ...place, field });
  }
  return v;
}

export interface ParseOptions {
  /**
   * Require `upperBound` to be the scheme's upper edge of `bucket` (simulate reserves by bucket, so a file made
   * with another scheme is an error). Otherwise any finite upperBound ≥ 0 is accepted (eval warns on a margin).
   */
  edgeUpperBound?: boolean;
}

/** Validate one predictions line against the bucket scheme. */
export function parsePredictionLine(value: unknown, scheme: BucketScheme, place: ErrorPlace, o: ParseOptions = {}): PredictionLine {
  const obj = asObject(value, place);
  const k = bucketCount(scheme);
  const index = getNonNegInt(obj, "index", place)!;
  const bucket = getNonNegInt(obj, "bucket", place)!;
  if (bucket >= k) throw new LenpredError(`bucket ${bucket} out of range 0..${k - 1} of the prepared scheme`, { ...place, field: "bucket" });
  let upperBound: number;
  if (o.edgeUpperBound) {
    const ub = obj.upperBound;
    if (typeof ub !== "number" || ub !== scheme.edges[bucket]) {
      throw new LenpredError(`expected ${scheme.edges[bucket]} (the scheme's upper edge of bucket ${bucket}), got ${describe(ub)}; were the predictions made with another bucket scheme?`, { ...place, field: "upperBound" });
    }
    upperBound = ub;
  } else {
    upperBound = finiteNumber(obj, "upperBound", place);
  }
  const rec: PredictionLine = { index, bucket, upperBound, expectedTokens: finiteNumber(obj, "expectedTokens", place) };
  if (obj.id !== undefined && obj.id !== null) {
    if (typeof obj.id !== "string" && typeof obj.id !== "number") throw new LenpredError(`expected a string or number id, got ${describe(obj.id)}`, { ...place, field: "id" });
    rec.id = obj.id;
  }
  if (obj.probabilities !== undefined && obj.probabilities !== null) {
    const p = obj.probabilities;
    if (!Array.isArray(p) || p.length !== k || !p.every((x) => typeof x === "number" && Number.isFinite(x) && x >= 0)) {
      throw new LenpredError(`expected ${k} non-negative probabilities`, { ...place, field: "probabilities" });
    }
    rec.probabilities = p as number[];
  }
  if (obj.reserveTokens !== undefined) rec.reserveTokens = finiteNumber(obj, "reserveTokens", place);
  if (obj.output_tokens !== undefined) rec.output_tokens = getNonNegInt(obj, "output_tokens", place)!;
  return rec;
}

export interface ReadPredictionsOptions extends ParseOptions {
  /** What the indices refer to, for messages (e.g. the split file). */
  of?: string;
  /** Expected id of record i, checked when both sides carry one (predictions for another split are caught). */
  idOf?: (index: number) => string | number | undefined;
  /** Optional fields this reader uses: each must be on every line or on none. */
  allOrNone?: readonly ("reserveTokens" | "output_tokens")[];
}

/**
 * Read a predictions file for a split of `n` records; result[i] is the prediction for record i. Every record
 * must have exactly one prediction.
 */
export async function readPredictionsFile(file: string, scheme: BucketScheme, n: number, o: ReadPredictionsOptions = {}): Promise<PredictionLine[]> {
  const of = o.of ?? "the split";
  const out: (PredictionLine | undefined)[] = new Array(n);
  const seenAt = new Int32Array(n).fill(-1);
  const present = new Map<string, number>();
  for await (const { index: line, value } of readJsonl(file)) {
    const place = { file, record: line };
    const p = parsePredictionLine(value, scheme, place, o);
    if (p.index >= n) {
      throw new LenpredError(`index ${p.index} is out of range: ${of} has ${n} records (0..${n - 1}); predictions for another split?`, { ...place, field: "index" });
    }
    if (seenAt[p.index]! >= 0) {
      throw new LenpredError(`duplicate prediction for index ${p.index} (first seen at record ${seenAt[p.index]})`, { ...place, field: "index" });
    }
    const rid = o.idOf?.(p.index);
    if (p.id !== undefined && rid !== undefined && String(p.id) !== String(rid)) {
      throw new LenpredError(`id ${JSON.stringify(p.id)} does not match id ${JSON.stringify(rid)} of record ${p.index} in ${of}`, { ...place, field: "id" });
    }
    for (const f of o.allOrNone ?? []) {
      const c = present.get(f) ?? 0;
      if (p[f] !== undefined) present.set(f, c + 1);
      else if (c > 0) throw new LenpredError(`${f} is missing here but present on earlier records (all or none)`, { ...place, field: f });
    }
    seenAt[p.index] = line;
    out[p.index] = p;
  }
  const missing: number[] = [];
  for (let i = 0; i < n; i++) if (!out[i]) missing.push(i);
  if (missing.length) {
    const shown = missing.slice(0, 5).join(", ") + (missing.length > 5 ? ", ..." : "");
    throw new LenpredError(`${missing.length} of ${n} records of ${of} have no prediction (indices ${shown})`, { file, field: "index" });
  }
  for (const [f, c] of present) if (c > 0 && c < n) throw new LenpredError(`only ${c} of ${n} predictions carry ${f} (all or none)`, { file, field: f });
  return out as PredictionLine[];
}
