/** The LLaMA (1/2) SentencePiece tokenizer via llama-tokenizer-js, which ships its 32k vocabulary. */
import type { EncodeOptions, Tokenizer } from "./types.js";

const BOS = 1;
const EOS = 2;

export async function loadLlama(name: string): Promise<Tokenizer> {
  const llama = (await import("llama-tokenizer-js")).default;
  const encode = (text: string, opts: EncodeOptions = {}): number[] => {
    const add = opts.addSpecialTokens ?? true;
    let ids = llama.encode(text, false);
    if (opts.maxLength !== undefined) {
      const room = opts.maxLength - (add ? 1 : 0);
      if (ids.length > room) ids = ids.slice(0, Math.max(0, room));
    }
    return add ? [BOS, ...ids] : ids;
  };
  return {
    name,
    kind: "llama",
    vocabSize: llama.vocabById.length,
    special: { bos: BOS, eos: EOS, unk: 0 },
    encode,
    count: (text, opts) => encode(text, opts).length,
    decode: (ids) => llama.decode(ids.filter((id) => id !== BOS && id !== EOS), false),
  };
}
