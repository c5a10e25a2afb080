/**
 * Streaming readers for the inputs `lenpred prepare` accepts. Containers: a top-level JSON array
 * (stream-json, element by element) or JSONL (line by line) — chosen from the first non-blank character, so
 * a 1 GB file is read in bounded memory. Record shapes: Alpaca `{instruction, input, output}`, logs
 * `{prompt, output}` / `{prompt, output_tokens}`, ShareGPT `{id, conversations: [{from, value}]}`.
 */
import { createReadStream, type ReadStream } from "node:fs";
import { open, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import streamArray from "stream-json/streamers/stream-array.js";
import withParser from "stream-json/utils/with-parser.js";
import { LenpredError, type ErrorPlace } from "../util/errors.js";
import { asObject, describe, getNonNegInt, getString, requireString } from "../util/fields.js";
import { DEFAULT_MAX_RECORD_BYTES, readError, readJsonl, recordTooLong } from "../util/jsonl.js";

export interface RawRecord {
  /** 0-based array element or non-blank JSONL line. */
  index: number;
  value: unknown;
}

/** Live byte count of the input, for progress bars. */
export interface ReadProgress {
  bytesRead: number;
}

/** First non-whitespace character of a file (skipping a BOM), or undefined for a blank file. */
async function firstChar(file: string): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(file, "r");
  } catch (e) {
    throw readError(e, file);
  }
  try {
    const buf = Buffer.alloc(64 * 1024);
    let pos = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos).catch((e: unknown) => { throw readError(e, file); });
      if (bytesRead === 0) return undefined;
      const m = /[^\s\uFEFF]/.exec(buf.toString("utf8", 0, bytesRead));
      if (m) return m[0];
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

/**
 * A `lenpred serve --state-dir` directory: its observation segments (`observations/<first seq>.jsonl`, log
 * records `{prompt, output_tokens, model, …}`; see src/online/store.ts), oldest first; undefined if `path` is
 * not a directory.
 */
async function stateDirSegments(path: string): Promise<string[] | undefined> {
  if (!(await stat(path).then((s) => s.isDirectory(), () => false))) return undefined;
  const dir = join(path, "observations");
  const names = await readdir(dir).catch(() => {
    throw new LenpredError("is a directory but not a state dir (no observations/ segments); expected a file", { file: path });
  });
  return names.filter((n) => /^\d{12}\.jsonl$/.test(n)).sort().map((n) => join(dir, n));
}

/** Stream the records of a JSON-array or JSONL file, or of a state dir's segments; errors name the file and record index. */
export async function* readRecords(file: string, progress?: ReadProgress, maxRecordBytes = DEFAULT_MAX_RECORD_BYTES): AsyncGenerator<RawRecord> {
  const segments = await stateDirSegments(file);
  if (segments) {
    // Records are numbered across segments; an error names the segment file.
    let index = 0;
    for (const seg of segments) {
      if ((await stat(seg)).size === 0) continue;
      for await (const r of readJsonl(seg, { maxRecordBytes })) yield { index: index++, value: r.value };
    }
    if (index === 0) throw new LenpredError("the state dir has no observations", { file });
    return;
  }
  const c = await firstChar(file);
  if (c === undefined) throw new LenpredError("file is empty (expected a JSON array or JSONL records)", { file });
  const input = createReadStream(file);
  const track = () => { if (progress) progress.bytesRead = input.bytesRead; };
  try {
    if (c === "[") yield* readJsonArray(file, input, track, maxRecordBytes);
    else yield* readJsonl(file, { input, onRecord: track, maxRecordBytes });
  } finally {
    input.destroy();
  }
}

type Token = { name: string; value?: string };

/**
 * stream-array behind a size guard: the characters of strings, keys and numbers inside each array element are
 * counted as the parser's tokens go by, so one huge element fails at the limit instead of being assembled.
 */
function sizeGuardedArray(file: string, max: number) {
  return (options: object) => {
    const next = (streamArray as unknown as (o: object) => (t: Token) => unknown)(options);
    let depth = 0;
    let element = 0;
    let size = 0;
    const ended = () => { if (depth === 1) { element++; size = 0; } };
    return (t: Token) => {
      switch (t.name) {
        case "startObject": case "startArray": depth++; break;
        case "endObject": case "endArray": depth--; ended(); break;
        case "endString": case "endNumber": case "nullValue": case "trueValue": case "falseValue": ended(); break;
        case "stringChunk": case "keyChunk": case "numberChunk":
          size += t.value!.length;
          if (size > max) throw recordTooLong(file, element, max, "characters");
      }
      return next(t);
    };
  };
}

async function* readJsonArray(file: string, input: ReadStream, track: () => void, maxRecordBytes: number): AsyncGenerator<RawRecord> {
  const asStream = (withParser as unknown as { asStream: (fn: unknown, o: object) => unknown }).asStream;
  const parser = asStream(sizeGuardedArray(file, maxRecordBytes), { packKeys: true }) as Readable & NodeJS.WritableStream;
  input.on("error", (e) => parser.destroy(e));
  input.pipe(parser);
  let index = 0;
  try {
    for await (const item of parser as AsyncIterable<{ key: number; value: unknown }>) {
      track();
      yield { index: item.key, value: item.value };
      index = item.key + 1;
    }
  } catch (e) {
    if (e instanceof LenpredError) throw e;
    if ((e as NodeJS.ErrnoException).code) throw readError(e, file);
    // stream-json reports truncation/garbage without a position; the element being parsed is `index`.
    throw new LenpredError(`malformed JSON array (${(e as Error).message})`, { file, record: index });
  } finally {
    parser.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------------

export const INPUT_FORMATS = ["auto", "alpaca", "log", "sharegpt"] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

/** One prompt/answer example before tokenization. */
export interface Example {
  id: string | number;
  prompt: string;
  /** Answer text to count with the tokenizer … */
  output?: string;
  /** … or a length already measured by the serving engine. */
  outputTokens?: number;
  place: ErrorPlace;
}

export const DEFAULT_TEMPLATE = "{instruction} {input}";

/**
 * Alpaca prompt template. `{instruction}` and `{input}` are substituted; trailing whitespace is removed so an
 * empty input leaves no trailing space (the reference builds `instruction + " " + input` that way).
 */
export function renderTemplate(template: string, instruction: string, input: string): string {
  return template.replace(/\{(instruction|input)\}/g, (_, k: string) => (k === "instruction" ? instruction : input)).trimEnd();
}

function validateTemplate(template: string): void {
  if (!template.includes("{instruction}")) throw new LenpredError(`template must contain {instruction}, got ${JSON.stringify(template)}`, { field: "--template" });
  const unknown = /\{(?!instruction\}|input\})[A-Za-z_]+\}/.exec(template);
  if (unknown) throw new LenpredError(`template placeholder ${unknown[0]} is unknown (use {instruction} and {input})`, { field: "--template" });
}

function detectFormat(obj: Record<string, unknown>, place: ErrorPlace): Exclude<InputFormat, "auto"> {
  if ("conversations" in obj) return "sharegpt";
  if ("instruction" in obj) return "alpaca";
  if ("prompt" in obj) return "log";
  throw new LenpredError(
    `cannot tell the input format from fields ${JSON.stringify(Object.keys(obj).slice(0, 8))}: expected instruction/input/output (Alpaca), ` +
      "prompt + output or output_tokens (log), or conversations (ShareGPT); or pass --format",
    place,
  );
}

const HUMAN = new Set(["human", "user"]);
const ASSISTANT = new Set(["gpt", "assistant", "chatgpt", "bard", "bing", "model"]);

export interface ExampleStats {
  format: Exclude<InputFormat, "auto">;
  /** Input records read (a ShareGPT conversation is one record with several examples). */
  records: number;
  /** ShareGPT conversations with no human→assistant pair. */
  recordsWithoutPairs: number;
  countedFromText: number;
  givenTokenCounts: number;
}

/** Stream examples from an input file; `stats` is filled in as it goes. */
export async function* readExamples(
  file: string,
  opts: { format?: InputFormat; template?: string; progress?: ReadProgress; stats?: Partial<ExampleStats>; maxRecordBytes?: number },
): AsyncGenerator<Example> {
  const template = opts.template ?? DEFAULT_TEMPLATE;
  validateTemplate(template);
  let format = opts.format && opts.format !== "auto" ? opts.format : undefined;
  const st = opts.stats ?? {};
  Object.assign(st, { records: 0, recordsWithoutPairs: 0, countedFromText: 0, givenTokenCounts: 0 });
  for await (const { index, value } of readRecords(file, opts.progress, opts.maxRecordBytes)) {
    const place: ErrorPlace = { file, record: index };
    const obj = asObject(value, place);
    format ??= detectFormat(obj, place);
    st.format = format;
    st.records!++;
    const ownId = obj.id;
    // Default id: 1-based position, the convention of the Vicuna length files (id = Alpaca index + 1).
    const id = typeof ownId === "string" || typeof ownId === "number" ? ownId : index + 1;
    if (format === "alpaca") {
      const instruction = requireString(obj, "instruction", place);
      const input = getString(obj, "input", place, { optional: true }) ?? "";
      const output = requireString(obj, "output", place);
      st.countedFromText!++;
      yield { id, prompt: renderTemplate(template, instruction, input), output, place };
    } else if (format === "log") {
      const prompt = requireString(obj, "prompt", place);
      if (obj.output_tokens !== undefined && obj.output_tokens !== null) {
        st.givenTokenCounts!++;
        yield { id, prompt, outputTokens: getNonNegInt(obj, "output_tokens", place), place };
      } else {
        if (obj.output === undefined || obj.output === null) {
          throw new LenpredError("missing required field (a log record needs 'output' text or 'output_tokens')", { ...place, field: "output" });
        }
        st.countedFromText!++;
        yield { id, prompt, output: requireString(obj, "output", place), place };
      }
    } else {
      const conv = obj.conversations;
      if (!Array.isArray(conv)) throw new LenpredError(`expected an array of {from, value}, got ${describe(conv)}`, { ...place, field: "conversations" });
      let prompt: string | undefined;
      let pairs = 0;
      for (let t = 0; t < conv.length; t++) {
        const turnPlace = { ...place, field: `conversations[${t}]` };
        const turn = asObject(conv[t], turnPlace);
        const from = turnString(turn, "from", file, index, t);
        const text = turnString(turn, "value", file, index, t);
        const role = from.toLowerCase();
        if (HUMAN.has(role)) prompt = text;
        else if (ASSISTANT.has(role) && prompt !== undefined) {
          st.countedFromText!++;
          yield { id: `${id}:${pairs}`, prompt, output: text, place: turnPlace };
          pairs++;
          prompt = undefined;
        }
      }
      if (pairs === 0) st.recordsWithoutPairs!++;
    }
  }
}

function turnString(turn: Record<string, unknown>, key: string, file: string, record: number, t: number): string {
  const v = turn[key];
  const field = `conversations[${t}].${key}`;
  if (v === undefined || v === null) throw new LenpredError("missing required field", { file, record, field });
  if (typeof v !== "string") throw new LenpredError(`expected a string, got ${describe(v)}`, { file, record, field });
  return v;
}
