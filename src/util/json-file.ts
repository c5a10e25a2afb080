/** Read and parse a whole JSON file; every failure is a LenpredError naming the file. */
import { readFile } from "node:fs/promises";
import { LenpredError } from "./errors.js";

export interface ReadJsonOptions {
  /** Message when the file does not exist (default "file not found"). */
  missing?: string;
  /** Message when it exists but cannot be read, from the errno code (default "cannot read (CODE)"). */
  unreadable?: (code: string | undefined) => string;
  /** Message when the text is not JSON, from the parser's message (default "malformed JSON (...)"). */
  malformed?: (detail: string) => string;
}

export async function readJsonFile(file: string, opts: ReadJsonOptions = {}): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LenpredError(code === "ENOENT" ? (opts.missing ?? "file not found") : (opts.unreadable ?? ((c) => `cannot read (${c})`))(code), { file });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const detail = (e as Error).message;
    throw new LenpredError(opts.malformed ? opts.malformed(detail) : `malformed JSON (${detail})`, { file });
  }
}
