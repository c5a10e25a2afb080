/**
 * Item 8: repeated prompts are reported and never straddle train and val/test (the label would leak into the
 * held-out figures); examples with a unique prompt keep exactly the split they had before.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { prepareDataset } from "../../src/data/prepare.js";
import { assignSplits, SPLIT_CODES } from "../../src/data/split.js";
import { runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/tmp.js";

const dir = tempDir("lenpred-dups-");
// 60 examples: 50 unique prompts, "repeat A" 6× (3 with the same answer), "repeat B" 4× (all identical).
const recs: { instruction: string; input: string; output: string }[] = [];
for (let i = 0; i < 50; i++) {
  recs.push({ instruction: `unique question ${i}`, input: "", output: `answer ${i} `.repeat(1 + (i % 7)) });
  if (i % 8 === 3) recs.push({ instruction: "repeat A", input: "", output: i < 20 ? "same" : `different ${i}` });
  if (i % 12 === 5) recs.push({ instruction: "repeat B", input: "", output: "same" });
}
const input = join(dir, "dups.json");
writeFileSync(input, JSON.stringify(recs));

const readSplit = (out: string, s: string) =>
  readFileSync(join(out, `${s}.jsonl`), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { id: number; prompt: string });

describe("duplicate prompts", () => {
  it("the fixture has the intended repeats", () => {
    expect(recs.length).toBe(60);
    expect(recs.filter((r) => r.instruction === "repeat A").length).toBe(6);
    expect(recs.filter((r) => r.instruction === "repeat B").length).toBe(4);
  });

  it("identical prompts share a split for every seed; unique prompts keep their seeded split", async () => {
    for (let seed = 0; seed < 12; seed++) {
      const out = join(dir, `seed${seed}`);
      const { stats } = await prepareDataset({ input, out, valFraction: 0.25, testFraction: 0.15, seed });
      const where = new Map<string, Set<string>>();
      const codes = assignSplits(recs.length, { val: 0.25, test: 0.15 }, seed);
      for (const s of ["train", "val", "test"]) {
        for (const r of readSplit(out, s)) {
          where.set(r.prompt, (where.get(r.prompt) ?? new Set()).add(s));
          if (r.prompt.startsWith("unique")) expect(s, `seed ${seed} id ${r.id}`).toBe(SPLIT_CODES[codes[r.id - 1]!]);
        }
      }
      for (const [prompt, splits] of where) expect([...splits], `seed ${seed}: ${prompt}`).toHaveLength(1);
      expect(stats.counts).toMatchObject({ examples: 60, duplicatePrompts: 5 + 3, duplicateExamples: 2 + 3 });
      expect(stats.counts.train + stats.counts.val + stats.counts.test!).toBe(60);
    }
  });

  it("the CLI warns on stderr naming the first repeat (also with -q); no warning without repeats", () => {
    const r = runCli(["prepare", "-i", input, "-o", join(dir, "cli"), "-q"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^lenpred: warning: .*dups\.json: 8 examples repeat an earlier prompt \(5 also its answer\), first id 15 repeats id 5; identical prompts were kept in one split \(\d+ moved\)\n$/);
    const clean = join(dir, "clean.json");
    writeFileSync(clean, JSON.stringify(recs.filter((x) => x.instruction.startsWith("unique"))));
    const c = runCli(["prepare", "-i", clean, "-o", join(dir, "clean"), "-q"]);
    expect(c.code).toBe(0);
    expect(c.stderr).toBe("");
    expect(JSON.parse(readFileSync(join(dir, "clean", "stats.json"), "utf8")).counts.duplicatePrompts).toBeUndefined();
  });
});
