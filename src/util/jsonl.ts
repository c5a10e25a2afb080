/** Streaming JSONL reading with errors that name file and record; bounded memory for any file size. */
import { createReadStream, type ReadStream } from "node:fs";
import { LenpredError } from "./errors.js";

export interface JsonlRecord {
  /** 0-based index of the non-empty line (= record index). */
  index: number;
  value: unknown;
}

/**
 * Longest record (line) accepted by default: far above any real prompt/answer record (the longest Alpaca
 * element is < 10 KB), small enough that a file without newlines (`/dev/zero`, a sparse or binary file) fails
 * fast with a clear error instead of growing one string until V8 gives up.
 */
export const DEFAULT_MAX_RECORD_BYTES = 8 * 1024 * 1024;

export interface ReadJsonlOptions {
  /** Read from this already-open stream of `file` (the caller owns it). */
  input?: ReadStream;
  /** Called after each record is parsed, before it is yielded (progress tracking). */
  onRecord?: () => void;
  /** Longest line in bytes (default DEFAULT_MAX_RECORD_BYTES); longer → LenpredError naming file and record. */
  maxRecordBytes?: number;
}

/** Error for a record over the size limit (shared with the JSON-array reader). */
export function recordTooLong(file: string, record: number, max: number, unit = "bytes"): LenpredError {
  return new LenpredError(
    `record is longer than ${max} ${unit} (--max-record-bytes); raise the limit if it is real, or check that the file is JSON/JSONL text`,
    { file, record },
  );
}

/** I/O errors while reading as a one-line LenpredError naming the file. */
export function readError(e: unknown, file: string): Error {
  if (e instanceof LenpredError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return new LenpredError("file not found", { file });
  if (code === "EISDIR") return new LenpredError("is a directory, expected a file", { file });
  if (code) return new LenpredError(`cannot read (${code}: ${(e as Error).message})`, { file });
  return e as Error;
}

/**
 * Stream the records of a JSONL file; blank lines are skipped, a leading UTF-8 BOM is ignored, lines end in
 * `\n` or `\r\n`. Lines are split on bytes (a newline byte never occurs inside a UTF-8 sequence) and joined
 * once, so a long line costs linear time.
 */
export async function* readJsonl(file: string, opts: ReadJsonlOptions = {}): AsyncGenerator<JsonlRecord> {
  const input = opts.input ?? createReadStream(file);
  const max = opts.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  let index = 0;
  let first = true;
  const parse = (buf: Buffer): JsonlRecord | undefined => {
    let line = buf.toString("utf8");
    if (first) { line = line.replace(/^\uFEFF/, ""); first = false; }
    if (line.trim() === "") return undefined;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new LenpredError(`malformed JSON (${(e as Error).message})`, { file, record: index });
    }
    opts.onRecord?.();
    return { index: index++, value };
  };
  try {
    let parts: Buffer[] = [];
    let pending = 0;
    for await (const raw of input as AsyncIterable<Buffer | string>) {
      const chunk = typeof raw === "string" ? Buffer.from(raw, "utf8") : raw;
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(10, start);
        if (nl < 0) break;
        const piece = chunk.subarray(start, nl);
        if (pending + piece.length > max) throw recordTooLong(file, index, max);
        const line = parts.length ? Buffer.concat([...parts, piece]) : piece;
        parts = [];
        pending = 0;
        start = nl + 1;
        const r = parse(line);
        if (r) yield r;
      }
      if (start < chunk.length) {
        pending += chunk.length - start;
        if (pending > max) throw recordTooLong(file, index, max);
        parts.push(chunk.subarray(start));
      }
    }
    if (parts.length) {
      const r = parse(Buffer.concat(parts));
      if (r) yield r;
    }
  } catch (e) {
    throw readError(e, file);
  } finally {
    if (!opts.input) input.destroy();
  }
}

export function toJsonlLine(value: unknown): string {
  return JSON.stringify(value) + "\n";
}
