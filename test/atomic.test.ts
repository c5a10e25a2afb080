import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openAtomicWriteStream, replaceDirAtomic, writeFileAtomic } from "../src/util/atomic.js";
import { tempDir } from "./helpers/tmp.js";

describe("atomic writes", () => {
  const dir = tempDir();
  it("writes a file via a temporary name", async () => {
    const p = join(dir, "a.json");
    await writeFileAtomic(p, "x");
    expect(readFileSync(p, "utf8")).toBe("x");
    expect(readdirSync(dir).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });
  it("an aborted stream leaves neither the target nor the temporary file", async () => {
    const p = join(dir, "b.jsonl");
    const w = await openAtomicWriteStream(p);
    await w.write("partial\n");
    await w.abort();
    expect(existsSync(p)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith("b.jsonl"))).toEqual([]);
  });
  it("a failing directory fill keeps the old directory intact", async () => {
    const d = join(dir, "model");
    await replaceDirAtomic(d, async (t) => writeFileAtomic(join(t, "w"), "old"));
    await expect(replaceDirAtomic(d, async (t) => { await writeFileAtomic(join(t, "w"), "new"); throw new Error("boom"); })).rejects.toThrow("boom");
    expect(readFileSync(join(d, "w"), "utf8")).toBe("old");
    await replaceDirAtomic(d, async (t) => writeFileAtomic(join(t, "w"), "new"));
    expect(readFileSync(join(d, "w"), "utf8")).toBe("new");
  });
});
