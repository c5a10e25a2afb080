/**
 * Hashed sparse features of a prompt for the n-gram model: word unigrams and bigrams, the first words of
 * every line (where the instruction's verb sits: "Write a story" vs "Classify the following"), optional
 * character n-grams inside words, and prompt-length features (log word/char counts and one-hot log2 bins).
 * The n-gram part is L2-normalised so long inputs do not swamp the weights; length features are appended
 * with fixed scales. Everything hashes (FNV-1a) into 2^hashBits slots, so the vocabulary is never stored.
 */
export interface NgramFeatureConfig {
  hashBits: number;
  bigrams: boolean;
  /** First N words of each line get a position-tagged feature (0 = off). */
  lineStartWords: number;
  /** Character n-gram sizes inside words (with boundary marks), e.g. [3, 4]; [] = off. */
  charNgrams: number[];
  lengthFeatures: boolean;
}

export const DEFAULT_FEATURES: NgramFeatureConfig = { hashBits: 18, bigrams: true, lineStartWords: 3, charNgrams: [], lengthFeatures: true };

export interface SparseVector {
  idx: Int32Array;
  val: Float32Array;
}

/** 32-bit FNV-1a over UTF-16 code units, mixed with a seed so feature families do not collide systematically. */
function fnv1a(s: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const WORD = /[\p{L}\p{N}]+(?:'[\p{L}]+)?|[^\s\p{L}\p{N}]/gu;

function words(text: string): string[] {
  return text.toLowerCase().match(WORD) ?? [];
}

export function extractFeatures(text: string, cfg: NgramFeatureConfig): SparseVector {
  const mask = (1 << cfg.hashBits) - 1;
  const acc = new Map<number, number>();
  const add = (key: string, seed: number, v = 1) => {
    const h = fnv1a(key, seed) & mask;
    acc.set(h, (acc.get(h) ?? 0) + v);
  };
  const lines = text.split("\n");
  let nWords = 0;
  for (const line of lines) {
    const ws = words(line);
    nWords += ws.length;
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i]!;
      add(w, 1);
      if (cfg.bigrams && i > 0) add(ws[i - 1]! + " " + w, 2);
      if (i < cfg.lineStartWords) add(i + ":" + w, 3);
      if (cfg.charNgrams.length && w.length > 2) {
        const padded = "<" + w + ">";
        for (const n of cfg.charNgrams) for (let j = 0; j + n <= padded.length; j++) add(padded.slice(j, j + n), 10 + n, 0.5);
      }
    }
    if (cfg.bigrams && ws.length) add("<s> " + ws[0]!, 2);
  }
  let norm = 0;
  for (const v of acc.values()) norm += v * v;
  norm = Math.sqrt(norm) || 1;
  const entries: [number, number][] = [];
  for (const [k, v] of acc) entries.push([k, v / norm]);
  if (cfg.lengthFeatures) {
    // Scaled to be O(1); bins give the linear models a non-linear response to length.
    const chars = text.length;
    const wl = Math.log1p(nWords), cl = Math.log1p(chars);
    entries.push([fnv1a("len:w", 4) & mask, wl / 4]);
    entries.push([fnv1a("len:c", 4) & mask, cl / 6]);
    entries.push([fnv1a("len:wbin:" + Math.floor(Math.log2(1 + nWords)), 4) & mask, 1]);
    entries.push([fnv1a("len:lines:" + Math.min(lines.length, 8), 4) & mask, 1]);
  }
  // merge possible collisions between the length features and the n-grams
  const merged = new Map<number, number>();
  for (const [k, v] of entries) merged.set(k, (merged.get(k) ?? 0) + v);
  const idx = new Int32Array(merged.size);
  const val = new Float32Array(merged.size);
  let i = 0;
  for (const [k, v] of merged) {
    idx[i] = k;
    val[i++] = v;
  }
  return { idx, val };
}

export function parseFeatureConfig(v: unknown): NgramFeatureConfig {
  const o = (v ?? {}) as Partial<NgramFeatureConfig>;
  const cfg = { ...DEFAULT_FEATURES, ...o };
  if (!Number.isInteger(cfg.hashBits) || cfg.hashBits < 8 || cfg.hashBits > 24) throw new Error(`hashBits must be an integer in 8..24, got ${cfg.hashBits}`);
  if (!Array.isArray(cfg.charNgrams) || !cfg.charNgrams.every((n) => Number.isInteger(n) && n >= 2 && n <= 6)) throw new Error("charNgrams must be integers in 2..6");
  return cfg;
}
