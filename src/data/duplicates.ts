/**
 * Duplicate detection for `prepare` in bounded memory: two 64-bit hashes per example (prompt; prompt + answer)
 * in growable typed arrays (16 bytes per example), grouped after pass 1 by sorting example positions.
 * Identical prompts must not straddle train and val/test (the answer length would leak), so every example
 * takes the split of the first example with its prompt; examples with a unique prompt keep their split.
 */
import { createHash } from "node:crypto";

export interface DuplicateReport {
  /** Examples whose prompt occurred earlier in the input. */
  duplicatePrompts: number;
  /** Examples whose prompt and answer both occurred earlier (whole repeated records). */
  duplicateExamples: number;
  /** Examples moved to another split to join an earlier identical prompt. */
  moved: number;
  /** The first repeated example (0-based example position) and the earlier one it repeats. */
  first?: { index: number; of: number };
}

class U32List {
  data = new Uint32Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const d = new Uint32Array(this.data.length * 2);
      d.set(this.data);
      this.data = d;
    }
    this.data[this.length++] = v;
  }
}

export class DuplicateIndex {
  private readonly prompt: [U32List, U32List] = [new U32List(), new U32List()];
  private readonly example: [U32List, U32List] = [new U32List(), new U32List()];

  get size(): number {
    return this.prompt[0]!.length;
  }

  /** Record the next example; `answer` is its answer text or given token count. */
  add(prompt: string, answer: string | number): void {
    const hp = createHash("sha256").update(prompt);
    const he = hp.copy().update("\u0000").update(typeof answer === "number" ? `#${answer}` : `"${answer}`);
    for (const [lists, h] of [[this.prompt, hp], [this.example, he]] as const) {
      const d = h.digest();
      lists[0].push(d.readUInt32LE(0));
      lists[1].push(d.readUInt32LE(4));
    }
  }

  /** Positions sorted by hash, ties by position: runs of equal hashes are groups, first = earliest. */
  private sorted(lists: U32List[]): Uint32Array {
    const [hi, lo] = [lists[0]!.data, lists[1]!.data];
    const order = Uint32Array.from({ length: this.size }, (_, i) => i);
    order.sort((a, b) => hi[a]! - hi[b]! || lo[a]! - lo[b]! || a - b);
    return order;
  }

  private runs(lists: U32List[], each: (first: number, member: number) => void): void {
    const [hi, lo] = [lists[0]!.data, lists[1]!.data];
    const order = this.sorted(lists);
    let first = -1;
    for (let k = 0; k < order.length; k++) {
      const i = order[k]!;
      const prev = k > 0 ? order[k - 1]! : -1;
      if (prev < 0 || hi[i] !== hi[prev] || lo[i] !== lo[prev]) first = i;
      else each(first, i);
    }
  }

  /** Move every repeated prompt into the split of its first occurrence (in place) and report the duplicates. */
  groupSplits(codes: Uint8Array): DuplicateReport {
    const r: DuplicateReport = { duplicatePrompts: 0, duplicateExamples: 0, moved: 0 };
    this.runs(this.prompt, (first, i) => {
      r.duplicatePrompts++;
      if (!r.first || i < r.first.index) r.first = { index: i, of: first };
      if (codes[i] !== codes[first]) {
        codes[i] = codes[first]!;
        r.moved++;
      }
    });
    this.runs(this.example, () => { r.duplicateExamples++; });
    return r;
  }
}
