/**
 * Batch prediction over a JSONL of prompts, streaming: read a chunk, `predictBatch` it (grouped by length),
 * write `PredictionRecord` lines (`index` = 0-based record, `id` copied) to a temp file renamed into place at
 * the end — the file `lenpred eval --preds` reads. Input lines are objects with a prompt field (any prepared
 * split works as is) or bare JSON strings.
 */
import { createReadStream } from "node:fs";
import { formatPredictionLines, predictionLine, type PredictionLike } from "../data/predictions-file.js";
import type { PredictionRecord } from "../model/prediction.js";
import { openAtomicWriteStream } from "../util/atomic.js";
import { LenpredError } from "../util/errors.js";
import { checkPrompt, type LengthPredictor } from "./length-predictor.js";
import { describe } from "../util/fields.js";
import { readJsonl } from "../util/jsonl.js";

export interface PredictFileOptions {
  /** Field holding the prompt (default "prompt"). */
  field?: string;
  /** Prompts per predictBatch call (default 256). */
  chunk?: number;
  probabilities?: boolean;
  quantile?: number;
  onProgress?: (done: number) => void;
}

/** Count non-empty lines cheaply (for the progress bar's total). */
export async function countLines(file: string): Promise<number> {
  let n = 0, lastNonNl = false;
  try {
    for await (const buf of createReadStream(file)) {
      const b = buf as Buffer;
      for (let i = 0; i < b.length; i++) if (b[i] === 10) n++;
      if (b.length) lastNonNl = b[b.length - 1] !== 10;
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new LenpredError("file not found", { file });
    throw e;
  }
  return n + (lastNonNl ? 1 : 0);
}

/** One predictions line (the format and its rounding rule are data/predictions-file.ts's). */
export function toRecord(index: number, id: string | number | undefined, p: PredictionLike, probabilities = true): PredictionRecord {
  return predictionLine(index, id, p, { probabilities });
}

/** Predict every line of `input`; write to `out` (atomically) or to `write` (e.g. stdout). Returns the count. */
export async function predictFile(predictor: LengthPredictor, input: string, sink: { out?: string; write?: (s: string) => void }, o: PredictFileOptions = {}): Promise<number> {
  const field = o.field ?? "prompt";
  const chunk = o.chunk ?? 256;
  const w = sink.out ? await openAtomicWriteStream(sink.out) : undefined;
  const emit = async (s: string) => (w ? w.write(s) : sink.write?.(s));
  let pending: { index: number; id?: string | number; prompt: string }[] = [];
  let done = 0;
  const flush = async () => {
    if (!pending.length) return;
    const preds = await predictor.predictBatch(pending.map((r) => r.prompt), { quantile: o.quantile });
    await emit(formatPredictionLines(pending.map((r, j) => toRecord(r.index, r.id, preds[j]!, o.probabilities !== false))));
    done += pending.length;
    pending = [];
    o.onProgress?.(done);
  };
  try {
    for await (const { index, value } of readJsonl(input)) {
      const place = { file: input, record: index };
      if (typeof value === "string") {
        checkPrompt(value, "prompt", place, predictor.maxPromptChars);
        pending.push({ index, prompt: value });
      } else if (value && typeof value === "object" && !Array.isArray(value)) {
        const obj = value as Record<string, unknown>;
        const prompt = obj[field];
        if (typeof prompt !== "string") throw new LenpredError(prompt === undefined ? "missing prompt field" : `expected a string, got ${describe(prompt)}`, { ...place, field });
        checkPrompt(prompt, field, place, predictor.maxPromptChars);
        const id = obj.id;
        if (id !== undefined && id !== null && typeof id !== "string" && typeof id !== "number") throw new LenpredError(`expected a string or number id, got ${describe(id)}`, { ...place, field: "id" });
        pending.push({ index, id: (id ?? undefined) as string | number | undefined, prompt });
      } else {
        throw new LenpredError(`expected an object with a '${field}' field or a JSON string, got ${describe(value)}`, place);
      }
      if (pending.length >= chunk) await flush();
    }
    await flush();
    await w?.commit();
  } catch (e) {
    await w?.abort();
    throw e;
  }
  return done;
}
