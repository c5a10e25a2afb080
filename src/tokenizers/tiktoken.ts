/** OpenAI BPE encodings (cl100k_base, o200k_base) via gpt-tokenizer; byte-identical to tiktoken. */
import type { EncodeOptions, Tokenizer } from "./types.js";

export type TiktokenEncoding = "cl100k_base" | "o200k_base";

interface GptModule {
  encode(text: string, opts?: { disallowedSpecial?: Set<string> }): number[];
  decode(ids: number[]): string;
}

// Text that merely looks like "<|endoftext|>" is counted as text (user data is never a control token).
const AS_TEXT = { disallowedSpecial: new Set<string>() };

export async function loadTiktoken(encoding: TiktokenEncoding, name: string): Promise<Tokenizer> {
  const mod = (encoding === "cl100k_base"
    ? await import("gpt-tokenizer/encoding/cl100k_base")
    : await import("gpt-tokenizer/encoding/o200k_base")) as unknown as GptModule;
  const encode = (text: string, opts: EncodeOptions = {}): number[] => {
    const ids = mod.encode(text, AS_TEXT);
    return opts.maxLength !== undefined && ids.length > opts.maxLength ? ids.slice(0, opts.maxLength) : ids;
  };
  return {
    name,
    kind: "tiktoken",
    // Largest id + 1 including the special tokens (gpt-tokenizer's vocabularySize counts only the BPE ranks).
    vocabSize: encoding === "cl100k_base" ? 100277 : 200019,
    special: {},
    encode,
    // No special tokens are added to plain text by these encodings, so addSpecialTokens changes nothing.
    count: (text, opts) => encode(text, opts).length,
    decode: (ids) => mod.decode(ids),
  };
}
