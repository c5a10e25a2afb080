/**
 * `loadTokenizer(spec)`: one entry point for every tokenizer lenpred counts or encodes with.
 *
 * Specs: `bert-base-uncased` / `distilbert-base-uncased` (bundled under assets/tokenizers, no network),
 * `llama` (LLaMA 1/2, llama-tokenizer-js), `cl100k` / `o200k` (OpenAI, gpt-tokenizer),
 * `hf:org/name[@rev]` (downloaded once into the Hugging Face hub cache by src/hub/client.ts), or a path to a
 * `tokenizer.json` (or a directory holding one).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { LenpredError } from "../util/errors.js";
import { repoRoot } from "../util/paths.js";
import { loadHfTokenizerFile } from "./hf.js";
import { hubSnapshot, type HubOptions } from "../hub/client.js";
import { loadLlama } from "./llama.js";
import { loadTiktoken } from "./tiktoken.js";
import type { Tokenizer } from "./types.js";

export type { EncodeOptions, SpecialIds, Tokenizer } from "./types.js";
export { type HubOptions } from "../hub/client.js";

/** Files from_pretrained reads for a fast tokenizer (tokenizer.json is what lenpred needs; the rest go along). */
const TOKENIZER_FILES = [
  { name: "tokenizer.json" },
  { name: "tokenizer_config.json", optional: true },
  { name: "special_tokens_map.json", optional: true },
  { name: "vocab.txt", optional: true },
];

/** Path of `tokenizer.json` of hub repository `org/name[@rev]` in the hub cache, downloading it on first use. */
export async function fetchHubTokenizer(spec: string, hub: HubOptions = {}): Promise<string> {
  const { dir } = await hubSnapshot(spec, TOKENIZER_FILES, hub);
  const file = join(dir, "tokenizer.json");
  try {
    const j = JSON.parse(readFileSync(file, "utf8")) as { model?: unknown };
    if (!j || typeof j !== "object" || !j.model) throw new Error("no 'model' section");
  } catch (e) {
    throw new LenpredError(`${spec}: tokenizer.json is not a Hugging Face tokenizer (${(e as Error).message})`, { file });
  }
  return file;
}

/** Bundled tokenizer.json files (DistilBERT uncased shares BERT uncased's WordPiece vocabulary). */
const BUNDLED: Record<string, string> = {
  "bert-base-uncased": "bert-base-uncased",
  "google-bert/bert-base-uncased": "bert-base-uncased",
  "distilbert-base-uncased": "bert-base-uncased",
  "distilbert/distilbert-base-uncased": "bert-base-uncased",
};
const TIKTOKEN: Record<string, "cl100k_base" | "o200k_base"> = {
  cl100k: "cl100k_base", cl100k_base: "cl100k_base", o200k: "o200k_base", o200k_base: "o200k_base",
};
const LLAMA = new Set(["llama", "llama2", "llama-2"]);

const TOKENIZER_SPEC_HELP =
  "bert-base-uncased (default, bundled; = distilbert-base-uncased), llama, cl100k, o200k, hf:org/name[@rev], or a path to a tokenizer.json";

export function bundledTokenizerDir(name = "bert-base-uncased"): string {
  return join(repoRoot, "assets", "tokenizers", name);
}

type Resolved =
  | { kind: "hf"; path: string; name: string }
  | { kind: "tiktoken"; encoding: "cl100k_base" | "o200k_base"; name: string }
  | { kind: "llama"; name: string };

async function resolveSpec(spec: string, hub: HubOptions): Promise<Resolved> {
  const s = spec.trim();
  const lower = s.toLowerCase();
  if (BUNDLED[lower]) return { kind: "hf", path: join(bundledTokenizerDir(BUNDLED[lower]), "tokenizer.json"), name: lower };
  if (TIKTOKEN[lower]) return { kind: "tiktoken", encoding: TIKTOKEN[lower]!, name: lower.replace(/_base$/, "") };
  if (LLAMA.has(lower)) return { kind: "llama", name: "llama" };
  if (lower.startsWith("hf:")) {
    const repo = s.slice(3);
    if (BUNDLED[repo.toLowerCase()]) return resolveSpec(repo, hub);
    return { kind: "hf", path: await fetchHubTokenizer(repo, hub), name: s };
  }
  if (s !== "" && existsSync(s)) {
    const abs = resolve(s);
    const file = statSync(abs).isDirectory() ? join(abs, "tokenizer.json") : abs;
    if (!existsSync(file)) throw new LenpredError(`directory has no tokenizer.json`, { file: abs, field: "--tokenizer" });
    return { kind: "hf", path: file, name: file };
  }
  throw new LenpredError(`unknown tokenizer '${spec}': expected ${TOKENIZER_SPEC_HELP}`, { field: "--tokenizer" });
}

const cache = new Map<string, Promise<Tokenizer>>();

/** Load (once per process) the tokenizer for a spec; unknown specs throw a LenpredError listing the valid ones. */
export function loadTokenizer(spec: string, hub: HubOptions = {}): Promise<Tokenizer> {
  const key = JSON.stringify([spec, hub.endpoint, hub.cacheDir, hub.offline]);
  let p = cache.get(key);
  if (!p) {
    p = (async () => {
      const r = await resolveSpec(spec, hub);
      if (r.kind === "hf") return loadHfTokenizerFile(r.path, r.name);
      if (r.kind === "tiktoken") return loadTiktoken(r.encoding, r.name);
      return loadLlama(r.name);
    })();
    p.catch(() => cache.delete(key));
    cache.set(key, p);
  }
  return p;
}

/**
 * The tokenizer.json behind a spec (downloading hf: specs), for model directories to copy next to their
 * weights; undefined for llama/cl100k/o200k, which are not tokenizer.json-based.
 */
export async function tokenizerJsonPath(spec: string, hub: HubOptions = {}): Promise<string | undefined> {
  const r = await resolveSpec(spec, hub);
  return r.kind === "hf" ? r.path : undefined;
}
