/** Streaming JSONL reading with errors that name file and record; bounded memory for any file size. */
import { createReadStream, type ReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { LenpredError } from "./errors.js";

export interface JsonlRecord {
  /** 0-based index of the non-empty line (= record index). */
  index: number;
  value: unknown;
}

export interface ReadJsonlOptions {
  /** Read from this already-open stream of `file` (the caller owns it). */
  input?: ReadStream;
  /** Called after each record is parsed, before it is yielded (progress tracking). */
  onRecord?: () => void;
}

/** Stream the records of a JSONL file; blank lines are skipped and a leading UTF-8 BOM is ignored. */
export async function* readJsonl(file: string, opts: ReadJsonlOptions = {}): AsyncGenerator<JsonlRecord> {
  const input = opts.input ?? createReadStream(file);
  input.setEncoding("utf8");
  const rl = createInterface({ input, crlfDelay: Infinity });
  let index = 0;
  let first = true;
  try {
    for await (let line of rl) {
      if (first) { line = line.replace(/^\uFEFF/, ""); first = false; }
      if (line.trim() === "") continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (e) {
        throw new LenpredError(`malformed JSON (${(e as Error).message})`, { file, record: index });
      }
      opts.onRecord?.();
      yield { index, value };
      index++;
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new LenpredError("file not found", { file });
    throw e;
  } finally {
    rl.close();
    if (!opts.input) input.destroy();
  }
}

export async function readJsonlAll(file: string): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const r of readJsonl(file)) out.push(r.value);
  return out;
}

export function toJsonlLine(value: unknown): string {
  return JSON.stringify(value) + "\n";
}
