/**
 * Item 3: on a full disk every write and close is checked: exit 2 with one line, no temporary left, the
 * previous output intact — never exit 0 and never a hang. Needs root (mounts a 200 KB tmpfs); skips otherwise.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openAtomicWriteStream, writeFileAtomic } from "../../src/util/atomic.js";
import { runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/tmp.js";
import { mountTmpfs, temps, unmount, writeAlpaca } from "./prepare-helpers.js";

const dir = tempDir("lenpred-full-disk-");
const full = join(dir, "full");
const mounted = mountTmpfs(full, "200k");
afterAll(() => { if (mounted) unmount(full); });
if (!mounted) console.warn("prepare-full-disk: skipped — needs root and `mount -t tmpfs` (a 200 KB tmpfs is the full disk)");

describe.skipIf(!mounted)("a full disk (200 KB tmpfs)", () => {
  const small = join(dir, "small.json");
  const big = join(dir, "big.json");
  writeAlpaca(small, 4);
  writeAlpaca(big, 3000, 200); // ~0.7 MB of prepared output: cannot fit

  it("prepare exits 2 with one line, leaves no temporary and keeps the previous output", () => {
    const out = join(full, "out");
    const ok = runCli(["prepare", "-i", small, "-o", out, "-q", "--val-fraction", "0.5"]);
    expect(ok.code, ok.stderr).toBe(0);
    const before = readFileSync(join(out, "train.jsonl"), "utf8");

    for (const threads of ["1", "2"]) {
      const r = runCli(["prepare", "-i", big, "-o", out, "-q", "--threads", threads], { timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^lenpred: error: [^\n]*full\/out\/[a-z.]+jsonl: cannot write: no space left on device \(ENOSPC\)\n$/);
      expect(temps(readdirSync(full))).toEqual([]);
      expect(readFileSync(join(out, "train.jsonl"), "utf8")).toBe(before);
    }
  });

  it("a stream write rejects (never hangs) and abort removes the temporary", async () => {
    mkdirSync(join(full, "s"), { recursive: true });
    const target = join(full, "s", "big.bin");
    const w = await openAtomicWriteStream(target);
    const chunk = new Uint8Array(64 * 1024).fill(7);
    let err: unknown;
    try {
      for (let i = 0; i < 64; i++) await w.write(chunk); // 4 MB into 200 KB
      await w.commit();
    } catch (e) {
      err = e;
      await w.abort();
    }
    expect((err as { code?: string }).code).toBe("ENOSPC");
    expect(existsSync(target)).toBe(false);
    expect(temps(readdirSync(join(full, "s")))).toEqual([]);
  });

  it("writeFileAtomic rejects with ENOSPC, keeps the old file and leaves no temporary", async () => {
    const target = join(full, "keep.txt");
    writeFileSync(target, "old");
    await expect(writeFileAtomic(target, new Uint8Array(1024 * 1024))).rejects.toMatchObject({ code: "ENOSPC" });
    expect(readFileSync(target, "utf8")).toBe("old");
    expect(temps(readdirSync(full))).toEqual([]);
  });
});
