/** Streaming JSONL reading with errors that name file and record; bounded memory for any file size. */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { LenpredError } from "./errors.js";

export interface JsonlRecord {
  /** 0-based index of the non-empty line (= record index). */
  index: number;
  value: unknown;
}

export async function* readJsonl(file: string): AsyncGenerator<JsonlRecord> {
  const input = createReadStream(file, { encoding: "utf8" });
  const rl = createInterface({ input, crlfDelay: Infinity });
  let index = 0;
  try {
    for await (const line of rl) {
      if (line.trim() === "") continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (e) {
        throw new LenpredError(`malformed JSON (${(e as Error).message})`, { file, record: index });
      }
      yield { index, value };
      index++;
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new LenpredError("file not found", { file });
    throw e;
  } finally {
    rl.close();
    input.destroy();
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
