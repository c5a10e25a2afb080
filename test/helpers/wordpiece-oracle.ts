/**
 * An independent, deliberately naive re-implementation of BERT's BasicTokenizer + WordPiece (as in Google's
 * original tokenization.py), driven by vocab.txt only. Tests use it as an oracle for the ids that
 * @huggingface/tokenizers produces from tokenizer.json; it is not used by lenpred itself.
 */
import { readFileSync } from "node:fs";

export function loadVocab(vocabTxt: string): Map<string, number> {
  const lines = readFileSync(vocabTxt, "utf8").split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return new Map(lines.map((t, i) => [t, i]));
}

const isControl = (ch: string) => ch !== "\t" && ch !== "\n" && ch !== "\r" && /\p{C}/u.test(ch);
const isWhitespace = (ch: string) => /\s/u.test(ch) || /\p{Zs}/u.test(ch);
const isPunct = (ch: string) => {
  const cp = ch.codePointAt(0)!;
  return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126) || /\p{P}/u.test(ch);
};
const isCjk = (cp: number) =>
  (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x20000 && cp <= 0x2a6df) ||
  (cp >= 0x2a700 && cp <= 0x2b73f) || (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b820 && cp <= 0x2ceaf) ||
  (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f);

function basicTokenize(text: string): string[] {
  let cleaned = "";
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp === 0 || cp === 0xfffd || isControl(ch)) continue;
    cleaned += isWhitespace(ch) ? " " : isCjk(cp) ? ` ${ch} ` : ch;
  }
  const words: string[] = [];
  for (const w of cleaned.split(" ")) {
    if (!w) continue;
    const norm = w.toLowerCase().normalize("NFD").replace(/\p{Mn}/gu, "");
    let cur = "";
    for (const ch of norm) {
      if (isPunct(ch)) {
        if (cur) words.push(cur);
        words.push(ch);
        cur = "";
      } else cur += ch;
    }
    if (cur) words.push(cur);
  }
  return words;
}

export function wordpieceIds(text: string, vocab: Map<string, number>, special = true): number[] {
  const unk = vocab.get("[UNK]")!;
  const out: number[] = special ? [vocab.get("[CLS]")!] : [];
  for (const word of basicTokenize(text)) {
    const chars = [...word];
    if (chars.length > 100) { out.push(unk); continue; }
    const pieces: number[] = [];
    let start = 0;
    let bad = false;
    while (start < chars.length) {
      let end = chars.length;
      let found: number | undefined;
      while (start < end) {
        const sub = (start > 0 ? "##" : "") + chars.slice(start, end).join("");
        found = vocab.get(sub);
        if (found !== undefined) break;
        end--;
      }
      if (found === undefined) { bad = true; break; }
      pieces.push(found);
      start = end;
    }
    if (bad) out.push(unk);
    else out.push(...pieces);
  }
  if (special) out.push(vocab.get("[SEP]")!);
  return out;
}
