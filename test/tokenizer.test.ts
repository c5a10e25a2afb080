import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundledTokenizerDir, loadTokenizer, tokenizerJsonPath } from "../src/tokenizers/index.js";
import { fetchHubTokenizer } from "../src/tokenizers/index.js";
import { parseRepoSpec } from "../src/hub/client.js";
import { startStandInHub, type StandInHub } from "./helpers/hub-server.js";
import { LenpredError } from "../src/util/errors.js";
import { tempDir } from "./helpers/tmp.js";
import { loadVocab, wordpieceIds } from "./helpers/wordpiece-oracle.js";

const bertDir = bundledTokenizerDir("bert-base-uncased");
const bertJsonText = readFileSync(join(bertDir, "tokenizer.json"), "utf8");
const vocab = loadVocab(join(bertDir, "vocab.txt"));

const HARD = [
  "Héllo WORLD! naïve café",
  "Ça va? Ñandú ö Ångström",
  "don't stop-believing, e-mail: x@y.com (3.14%)",
  "unaffable transformers tokenization",
  "你好世界 mixed 世界 text",
  "a\u0000b\tc\u200bd\r\ne\u00a0f",
  "😀 emoji and ✓ symbols … “quotes”",
  "x".repeat(101) + " long word",
  "1,000,000 tokens; 2nd-place — em dash",
  "   leading and trailing   ",
  "",
];

describe("bert-base-uncased (bundled)", () => {
  it("pins the reference ids: [CLS]=101 hello=7592 world=2088 [SEP]=102", async () => {
    const tok = await loadTokenizer("bert-base-uncased");
    expect(tok.encode("hello world")).toEqual([101, 7592, 2088, 102]);
    expect(tok.encode("Hello World")).toEqual([101, 7592, 2088, 102]);
    expect(tok.encode("hello world", { addSpecialTokens: false })).toEqual([7592, 2088]);
    expect(tok.special).toMatchObject({ cls: 101, sep: 102, pad: 0, unk: 100, mask: 103 });
    expect(tok.vocabSize).toBe(30522);
    // The same ids are the line numbers of vocab.txt (an independent file).
    expect([vocab.get("[CLS]"), vocab.get("hello"), vocab.get("world"), vocab.get("[SEP]")]).toEqual([101, 7592, 2088, 102]);
  });

  it("matches an independent vocab.txt WordPiece oracle on hard strings (lowercase, accents, CJK, controls, punctuation, UNK)", async () => {
    const tok = await loadTokenizer("bert-base-uncased");
    for (const s of HARD) expect(tok.encode(s), JSON.stringify(s)).toEqual(wordpieceIds(s, vocab));
    // Spot checks of what the oracle claims, so a shared misunderstanding would still show up here.
    expect(tok.encode("Héllo naïve café", { addSpecialTokens: false })).toEqual(["hello", "naive", "cafe"].map((w) => vocab.get(w)));
    expect(tok.encode("don't", { addSpecialTokens: false })).toEqual([2123, 1005, 1056]);
    expect(tok.encode("😀", { addSpecialTokens: false })).toEqual([100]);
  });

  it("wrapping specials ourselves equals the library's own add_special_tokens output", async () => {
    const tok = await loadTokenizer("bert-base-uncased");
    const lib = new HfTokenizer(JSON.parse(bertJsonText), {});
    // Literal special tokens in the text take the library's full path (added-token splitting); the rest the fast one.
    for (const s of [...HARD, "literal [CLS] hi [SEP] x[MASK]y [cls] [UNK]", "[SEP]", "a[PAD]b"]) {
      expect(tok.encode(s)).toEqual(lib.encode(s).ids);
      expect(tok.count(s)).toBe(lib.encode(s).ids.length);
      expect(tok.count(s, { addSpecialTokens: false })).toBe(lib.encode(s).ids.length - 2);
    }
  });

  it("maxLength truncates the content and keeps [CLS] … [SEP] (HF truncation)", async () => {
    const tok = await loadTokenizer("bert-base-uncased");
    const text = "one two three four five six seven";
    const full = tok.encode(text);
    const cut = tok.encode(text, { maxLength: 5 });
    expect(cut).toEqual([101, ...full.slice(1, 4), 102]);
    expect(tok.count(text, { maxLength: 5 })).toBe(5);
    expect(tok.encode(text, { maxLength: 3, addSpecialTokens: false })).toEqual(full.slice(1, 4));
    expect(tok.encode("hi", { maxLength: 512 })).toEqual(tok.encode("hi"));
    expect(() => tok.encode(text, { maxLength: 1 })).toThrow(LenpredError);
  });

  it("distilbert-base-uncased, hf:distilbert/distilbert-base-uncased and a tokenizer.json path give the same ids", async () => {
    const ref = (await loadTokenizer("bert-base-uncased")).encode(HARD[2]!);
    for (const spec of ["distilbert-base-uncased", "hf:distilbert/distilbert-base-uncased", join(bertDir, "tokenizer.json"), bertDir]) {
      expect((await loadTokenizer(spec)).encode(HARD[2]!), spec).toEqual(ref);
    }
    expect(await tokenizerJsonPath("bert-base-uncased")).toBe(join(bertDir, "tokenizer.json"));
    expect(existsSync((await tokenizerJsonPath("distilbert-base-uncased"))!)).toBe(true);
    expect(await tokenizerJsonPath("cl100k")).toBeUndefined();
    expect(await tokenizerJsonPath("llama")).toBeUndefined();
  });
});

describe("post-processor variants", () => {
  const dir = tempDir();
  function variant(name: string, pp: unknown): string {
    const j = JSON.parse(bertJsonText) as Record<string, unknown>;
    j.post_processor = pp;
    const p = join(dir, `${name}.json`);
    writeFileSync(p, JSON.stringify(j));
    return p;
  }
  it("BertProcessing adds [CLS]/[SEP]; no post-processor adds nothing", async () => {
    const bert = await loadTokenizer(variant("bertproc", { type: "BertProcessing", sep: ["[SEP]", 102], cls: ["[CLS]", 101] }));
    expect(bert.encode("hello world")).toEqual([101, 7592, 2088, 102]);
    const none = await loadTokenizer(variant("none", null));
    expect(none.encode("hello world")).toEqual([7592, 2088]);
    expect(none.count("hello world")).toBe(2);
  });
  it("a file that is not a tokenizer.json is an error naming the file", async () => {
    const bad = join(dir, "bad.json");
    writeFileSync(bad, '{"hello": 1}');
    await expect(loadTokenizer(bad)).rejects.toThrow(/bad\.json.*model/);
    const garbage = join(dir, "garbage.json");
    writeFileSync(garbage, "{not json");
    await expect(loadTokenizer(garbage)).rejects.toThrow(/garbage\.json.*not a valid tokenizer\.json/);
  });
});

describe("a byte-level BPE tokenizer.json (GPT-2 style, built here)", () => {
  // GPT-2's byte → printable-char table, so every byte is in the vocabulary.
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let extra = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + extra++); }
  const vocab: Record<string, number> = {};
  cs.forEach((c, i) => { vocab[String.fromCodePoint(c)] = i; });
  const merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d"];
  for (const m of merges) vocab[m.replace(" ", "")] = Object.keys(vocab).length;
  const eot = Object.keys(vocab).length;
  const json = {
    version: "1.0", truncation: null, padding: null,
    added_tokens: [{ id: eot, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, vocab, merges },
  };
  const dir = tempDir();
  const file = join(dir, "tokenizer.json");
  writeFileSync(file, JSON.stringify(json));

  it("merges as expected and equals the library's own encode, with and without added tokens in the text", async () => {
    const tok = await loadTokenizer(file);
    expect(tok.encode("hello world")).toEqual([vocab["hello"], vocab["Ġworld"]]);
    expect(tok.special).toEqual({ eos: eot });
    const lib = new HfTokenizer(json, {});
    for (const s of ["hello world", "hello<|endoftext|>world", "naïve café ✓ 123", "", "  spaced  out  "]) {
      expect(tok.encode(s), s).toEqual(lib.encode(s).ids);
      expect(tok.count(s), s).toBe(lib.encode(s).ids.length);
    }
    expect(tok.encode("a<|endoftext|>b")).toContain(eot);
    expect(tok.decode(tok.encode("hello world"))).toBe("hello world");
  });
});

describe("other tokenizers", () => {
  it("cl100k and o200k match tiktoken ids", async () => {
    const c = await loadTokenizer("cl100k");
    expect(c.encode("hello world")).toEqual([15339, 1917]);
    expect(c.count("hello world", { addSpecialTokens: true })).toBe(2);
    // Special-token look-alikes in user text are plain text, not a crash.
    expect(c.count("a <|endoftext|> b")).toBeGreaterThan(3);
    const o = await loadTokenizer("o200k_base");
    expect(o.encode("hello world")).toEqual([24912, 2375]);
    expect(c.decode(c.encode("round trip ✓"))).toBe("round trip ✓");
  });
  it("llama adds <s> (id 1) unless told not to", async () => {
    const l = await loadTokenizer("llama");
    expect(l.encode("hello world")).toEqual([1, 22172, 3186]);
    expect(l.encode("hello world", { addSpecialTokens: false })).toEqual([22172, 3186]);
    expect(l.encode("hello world", { maxLength: 2 })).toEqual([1, 22172]);
    expect(l.vocabSize).toBe(32000);
    expect(l.decode(l.encode("hello world"))).toBe("hello world");
  });
  it("an unknown spec is a LenpredError that lists the valid ones", async () => {
    await expect(loadTokenizer("no-such-tokenizer")).rejects.toThrow(LenpredError);
    await expect(loadTokenizer("no-such-tokenizer")).rejects.toThrow(/unknown tokenizer 'no-such-tokenizer'.*bert-base-uncased.*cl100k/);
  });
});

describe("Hugging Face hub download (against the stand-in hub, test/helpers/hub-server.ts)", () => {
  let hub: StandInHub;
  beforeAll(async () => {
    hub = await startStandInHub({
      "acme/tiny-bert": { revisions: { main: { "tokenizer.json": bertJsonText }, v2: { "tokenizer.json": bertJsonText, "vocab.txt": "x" } } },
      "acme/html": { revisions: { main: { "tokenizer.json": "<html>login</html>" } } },
    });
  });
  afterAll(() => hub.close());

  it("downloads once into the hub cache (models--acme--tiny-bert), then loads offline", async () => {
    const cacheDir = tempDir();
    const tok = await loadTokenizer("hf:acme/tiny-bert", { endpoint: hub.endpoint, cacheDir });
    expect(tok.encode("hello world")).toEqual([101, 7592, 2088, 102]);
    const fileRequests = () => hub.requests.filter((r) => r.url.startsWith("/acme/tiny-bert/resolve/")).length;
    expect(fileRequests()).toBe(2); // HEAD (commit, etag) + GET
    const cached = join(cacheDir, "models--acme--tiny-bert", "snapshots", hub.commitOf("acme/tiny-bert", "main"), "tokenizer.json");
    expect(readFileSync(cached, "utf8")).toBe(bertJsonText);
    // A second resolution (bypassing the in-process memo) finds the snapshot complete: no file request.
    expect(await fetchHubTokenizer("acme/tiny-bert", { endpoint: hub.endpoint, cacheDir })).toBe(cached);
    expect(await fetchHubTokenizer("acme/tiny-bert", { endpoint: hub.endpoint, cacheDir, offline: true })).toBe(cached);
    expect(fileRequests()).toBe(2);
    expect(await fetchHubTokenizer("acme/tiny-bert@v2", { endpoint: hub.endpoint, cacheDir })).toBe(join(cacheDir, "models--acme--tiny-bert", "snapshots", hub.commitOf("acme/tiny-bert", "v2"), "tokenizer.json"));
  });

  it("honours LENPRED_HF_ENDPOINT (then HF_ENDPOINT) and HF_HUB_CACHE", async () => {
    const cacheDir = tempDir();
    const saved = { e: process.env.LENPRED_HF_ENDPOINT, c: process.env.HF_HUB_CACHE };
    process.env.LENPRED_HF_ENDPOINT = hub.endpoint + "/";
    process.env.HF_HUB_CACHE = cacheDir;
    try {
      const p = await tokenizerJsonPath("hf:acme/tiny-bert");
      expect(p).toBe(join(cacheDir, "models--acme--tiny-bert", "snapshots", hub.commitOf("acme/tiny-bert", "main"), "tokenizer.json"));
    } finally {
      for (const [k, v] of [["LENPRED_HF_ENDPOINT", saved.e], ["HF_HUB_CACHE", saved.c]] as const) {
        if (v === undefined) delete process.env[k]; else process.env[k] = v;
      }
    }
  });

  it("reports 404s and non-tokenizer answers clearly", async () => {
    const cacheDir = tempDir();
    await expect(loadTokenizer("hf:acme/missing", { endpoint: hub.endpoint, cacheDir })).rejects.toThrow(/HTTP 404 \(no such repository\)/);
    await expect(loadTokenizer("hf:acme/html", { endpoint: hub.endpoint, cacheDir })).rejects.toThrow(/tokenizer\.json is not a Hugging Face tokenizer/);
    await expect(loadTokenizer("hf:acme/x", { endpoint: "http://127.0.0.1:1", cacheDir })).rejects.toThrow(/cannot reach/);
    expect(existsSync(join(cacheDir, "models--acme--missing"))).toBe(false);
  });

  it("rejects repository names that could escape the cache", () => {
    for (const bad of ["../etc", "a/../../b", "a/b/c", "/abs", "a/b@../x", ""]) expect(() => parseRepoSpec(bad), bad).toThrow(LenpredError);
    expect(parseRepoSpec("org/name@rev-1")).toEqual({ repo: "org/name", revision: "rev-1" });
  });
});
