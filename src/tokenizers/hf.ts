/**
 * Any Hugging Face `tokenizer.json` (WordPiece, BPE, Unigram) via @huggingface/tokenizers.
 *
 * Special tokens are added here rather than by the library's post-processor: we read the prefix/suffix ids
 * from the post-processor config once, encode the content without specials and wrap it. That gives HF-style
 * truncation (`maxLength` cuts the content, `[CLS] … [SEP]` survive) for free; a test checks that the result
 * equals the library's own `add_special_tokens: true` output.
 */
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { LenpredError } from "../util/errors.js";
import { asObject } from "../util/fields.js";
import { readJsonFile } from "../util/json-file.js";
import type { EncodeOptions, SpecialIds, Tokenizer } from "./types.js";

interface Wrap { prefix: number[]; suffix: number[] }

export async function loadHfTokenizerFile(path: string, name: string): Promise<Tokenizer> {
  const invalid = (detail: string | undefined) => `not a valid tokenizer.json (${detail})`;
  const json = await readJsonFile(path, { missing: "tokenizer file not found", unreadable: invalid, malformed: invalid });
  return hfTokenizerFromJson(asObject(json, { file: path }), name, path);
}

function hfTokenizerFromJson(json: Record<string, unknown>, name: string, path?: string): Tokenizer {
  const model = json.model as Record<string, unknown> | undefined;
  if (!model || typeof model !== "object" || typeof model.type !== "string" && !("vocab" in model)) {
    throw new LenpredError("not a tokenizer.json (no 'model' section)", { file: path, field: "model" });
  }
  let tok: HfTokenizer;
  try {
    tok = new HfTokenizer(json, {});
  } catch (e) {
    throw new LenpredError(`@huggingface/tokenizers cannot load this tokenizer.json (${(e as Error).message})`, { file: path });
  }
  if (model.type === "WordPiece") memoizeWords(tok);
  const vocab = tok.get_vocab(true);
  let maxId = -1;
  for (const id of vocab.values()) if (id > maxId) maxId = id;
  const wrap = specialWrap(json.post_processor, tok, path);
  const special = specialIds(tok, wrap, model);

  const pieces = fastPieces(tok, json);
  const content = (text: string): number[] => pieces.ids(text) ?? tok.encode(text, { add_special_tokens: false }).ids;
  const encode = (text: string, opts: EncodeOptions = {}): number[] => {
    const add = opts.addSpecialTokens ?? true;
    let ids = content(text);
    const extra = add ? wrap.prefix.length + wrap.suffix.length : 0;
    if (opts.maxLength !== undefined) {
      const room = opts.maxLength - extra;
      if (room < 0) throw new LenpredError(`maxLength ${opts.maxLength} leaves no room for ${extra} special tokens`);
      if (ids.length > room) ids = ids.slice(0, room);
    }
    return add ? [...wrap.prefix, ...ids, ...wrap.suffix] : ids;
  };
  return {
    name,
    kind: "huggingface",
    vocabSize: maxId + 1,
    special,
    tokenizerJsonPath: path,
    encode,
    count(text, opts = {}) {
      const n = pieces.count(text) + ((opts.addSpecialTokens ?? true) ? wrap.prefix.length + wrap.suffix.length : 0);
      return opts.maxLength !== undefined ? Math.min(n, opts.maxLength) : n;
    },
    decode: (ids) => tok.decode(ids, { skip_special_tokens: true }),
  };
}

/** Prefix/suffix ids that the post-processor adds around a single sequence. */
function specialWrap(pp: unknown, tok: HfTokenizer, path?: string): Wrap {
  if (!pp || typeof pp !== "object") return { prefix: [], suffix: [] };
  const p = pp as Record<string, unknown>;
  const idOf = (tokenOrPair: unknown): number => {
    // Bert/RobertaProcessing store [token, id]; TemplateProcessing names tokens in `special_tokens`.
    if (Array.isArray(tokenOrPair) && typeof tokenOrPair[1] === "number") return tokenOrPair[1];
    const id = typeof tokenOrPair === "string" ? tok.token_to_id(tokenOrPair) : undefined;
    if (id === undefined) throw new LenpredError(`post-processor special token ${JSON.stringify(tokenOrPair)} is not in the vocabulary`, { file: path, field: "post_processor" });
    return id;
  };
  switch (p.type) {
    case "BertProcessing":
    case "RobertaProcessing":
      return { prefix: [idOf(p.cls)], suffix: [idOf(p.sep)] };
    case "TemplateProcessing": {
      const specials = (p.special_tokens ?? {}) as Record<string, { ids?: number[] }>;
      const out: Wrap = { prefix: [], suffix: [] };
      let seenSequence = false;
      for (const item of (p.single ?? []) as Array<Record<string, { id: string }>>) {
        if (item.Sequence) { seenSequence = true; continue; }
        if (item.SpecialToken) {
          const ids = specials[item.SpecialToken.id]?.ids ?? [idOf(item.SpecialToken.id)];
          (seenSequence ? out.suffix : out.prefix).push(...ids);
        }
      }
      return out;
    }
    case "Sequence": {
      const out: Wrap = { prefix: [], suffix: [] };
      for (const sub of (p.processors ?? []) as unknown[]) {
        const w = specialWrap(sub, tok, path);
        out.prefix = [...w.prefix, ...out.prefix];
        out.suffix = [...out.suffix, ...w.suffix];
      }
      return out;
    }
    default:
      return { prefix: [], suffix: [] }; // ByteLevel and friends add no tokens.
  }
}

function specialIds(tok: HfTokenizer, wrap: Wrap, model: Record<string, unknown>): SpecialIds {
  const first = (...names: string[]): number | undefined => {
    for (const n of names) {
      const id = tok.token_to_id(n);
      if (id !== undefined) return id;
    }
    return undefined;
  };
  const s: SpecialIds = {
    cls: wrap.prefix.length && wrap.suffix.length ? wrap.prefix[0] : first("[CLS]"),
    sep: wrap.prefix.length && wrap.suffix.length ? wrap.suffix[wrap.suffix.length - 1] : first("[SEP]"),
    pad: first("[PAD]", "<pad>"),
    unk: first(...(typeof model.unk_token === "string" ? [model.unk_token] : []), "[UNK]", "<unk>"),
    mask: first("[MASK]", "<mask>"),
    bos: first("<s>", "<|begin_of_text|>"),
    eos: first("</s>", "<|end_of_text|>", "<|endoftext|>"),
  };
  for (const k of Object.keys(s) as Array<keyof SpecialIds>) if (s[k] === undefined) delete s[k];
  return s;
}

const WORD_CACHE_LIMIT = 200_000;

/**
 * WordPiece splits each pre-tokenized word independently, and the library's implementation rebuilds every
 * candidate substring, which made it the largest cost of `prepare`. Natural text repeats words (Zipf), so a
 * bounded word → pieces memo in front of the library's own `encode` gives identical output several times faster.
 */
function memoizeWords(tok: HfTokenizer): void {
  const model = tok.model as unknown as { encode(words: string[]): string[] } | null;
  if (!model || typeof model.encode !== "function") return;
  const original = model.encode.bind(model);
  const cache = new Map<string, string[]>();
  model.encode = (words: string[]): string[] => {
    const out: string[] = [];
    for (const w of words) {
      let pieces = cache.get(w);
      if (pieces === undefined) {
        pieces = original([w]);
        if (cache.size >= WORD_CACHE_LIMIT) cache.clear();
        cache.set(w, pieces);
      }
      for (const p of pieces) out.push(p);
    }
    return out;
  };
}

type Callable<A extends unknown[], R> = ((...args: A) => R) | null;

/**
 * The library's encode() first splits the raw text on added tokens with a per-character trie walk, then
 * normalizes, splits again on normalized added tokens, pre-tokenizes and runs the model. When the text contains
 * no added token (checked with a few native `includes`), both splits return the text unchanged, so we can call
 * the library's own normalizer → pre-tokenizer → model directly: same pieces, a good deal faster. Any text
 * containing an added token (e.g. a literal "[SEP]") takes the library's full path. Tests compare both.
 */
function fastPieces(tok: HfTokenizer, json: Record<string, unknown>): { count(text: string): number; ids(text: string): number[] | undefined } {
  const t = tok as unknown as {
    normalizer: Callable<[string], string>;
    pre_tokenizer: Callable<[string, { section_index: number }], string[]>;
    model: (Callable<[string[]], string[]> & { tokens_to_ids?: Map<string, number>; unk_token_id?: number }) | null;
    remove_space?: boolean;
    do_lowercase_and_remove_accent?: boolean;
  };
  const added = Array.isArray(json.added_tokens) ? (json.added_tokens as Array<{ content?: unknown; normalized?: unknown }>) : [];
  const raw = added.map((a) => a.content).filter((c): c is string => typeof c === "string" && c.length > 0);
  const normalized = added.filter((a) => a.normalized === true).map((a) => a.content).filter((c): c is string => typeof c === "string" && c.length > 0);
  const model = t.model;
  const usable = typeof model === "function" && model.tokens_to_ids instanceof Map && raw.length <= 64 && !t.remove_space && !t.do_lowercase_and_remove_accent;
  const slow = (text: string) => tok.tokenize(text, { add_special_tokens: false });
  const split = (text: string): string[] | undefined => {
    if (!usable || raw.some((c) => text.includes(c))) return undefined;
    const norm = t.normalizer ? t.normalizer(text) : text;
    if (norm.length === 0) return [];
    if (normalized.some((c) => norm.includes(c))) return undefined;
    return model!(t.pre_tokenizer ? t.pre_tokenizer(norm, { section_index: 0 }) : [norm]);
  };
  return {
    count: (text) => (split(text) ?? slow(text)).length,
    ids(text) {
      const p = split(text);
      if (p === undefined) return undefined;
      const map = model!.tokens_to_ids!;
      const unk = model!.unk_token_id ?? -1;
      return p.map((x) => map.get(x) ?? unk);
    },
  };
}
