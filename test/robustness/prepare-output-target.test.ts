/**
 * Items 4 and 7: what `--out` and `--input` may be. A regular file or a foreign directory as --out is refused
 * (unless --force); a directory as input, a read-only file system or a mount point as --out give one line and
 * exit 2. The mount cases need root (tmpfs) and skip otherwise.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/tmp.js";
import { mountTmpfs, remount, temps, unmount, writeAlpaca } from "./prepare-helpers.js";

const dir = tempDir("lenpred-out-target-");
const input = join(dir, "in.json");
writeAlpaca(input, 6);

function expectOneLineError(r: { code: number; stderr: string }, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toMatch(/^lenpred: error: [^\n]*\n$/); // one line, no stack trace
  expect(r.stderr).toMatch(pattern);
}

describe("prepare --out must be prepare output (or --force)", () => {
  it("refuses to replace an existing regular file, keeps it, and replaces it with --force", () => {
    const out = join(dir, "notes.txt");
    writeFileSync(out, "precious");
    expectOneLineError(runCli(["prepare", "-i", input, "-o", out, "-q"]), /notes\.txt: exists and is not a directory; refusing to replace it .*--force/);
    expect(readFileSync(out, "utf8")).toBe("precious");
    expect(temps(readdirSync(dir))).toEqual([]);
    const r = runCli(["prepare", "-i", input, "-o", out, "-q", "--force"]);
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(out).isDirectory()).toBe(true);
  });

  it("refuses a non-empty directory that is not prepare output; accepts an empty one and earlier output", () => {
    const foreign = join(dir, "home");
    mkdirSync(foreign);
    writeFileSync(join(foreign, "thesis.tex"), "years of work");
    expectOneLineError(runCli(["prepare", "-i", input, "-o", foreign, "-q"]), /home: is a non-empty directory that is not lenpred prepare output/);
    expect(readdirSync(foreign)).toEqual(["thesis.tex"]);

    const empty = join(dir, "empty");
    mkdirSync(empty);
    expect(runCli(["prepare", "-i", input, "-o", empty, "-q"]).code).toBe(0);
    const again = runCli(["prepare", "-i", input, "-o", empty, "-q", "--seed", "7"]); // earlier output: replaced
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(empty, "stats.json"), "utf8")).seed).toBe(7);
  });

  it("a directory as input is one clear line (not EISDIR from a read)", () => {
    expectOneLineError(runCli(["prepare", "-i", dir, "-o", join(dir, "x"), "-q"]), /: is a directory, expected a file$/m);
  });
});

const mnt = join(dir, "mnt");
const ro = join(dir, "ro");
const canMount = mountTmpfs(mnt, "1m");
const canRo = canMount && mountTmpfs(ro, "1m") && remount(ro, "ro");
afterAll(() => { unmount(mnt); unmount(ro); });
if (!canMount) console.warn("prepare-output-target: mount-point and read-only cases skipped — need root and `mount -t tmpfs`");

describe.skipIf(!canRo)("file-system refusals (tmpfs mounts)", () => {
  it("a mount point as --out is refused before any work, with a hint", () => {
    expectOneLineError(runCli(["prepare", "-i", input, "-o", mnt, "-q"]), /mnt: is a mount point, which cannot be replaced atomically; write to a directory inside it/);
    expect(readdirSync(mnt)).toEqual([]);
    expect(temps(readdirSync(dir))).toEqual([]);
    expect(runCli(["prepare", "-i", input, "-o", join(mnt, "out"), "-q"]).code).toBe(0);
  });

  it("a read-only file system says so (EROFS), also when parents must be created", () => {
    expectOneLineError(runCli(["prepare", "-i", input, "-o", join(ro, "out"), "-q"]), /read-only file system \(EROFS\)/);
    expectOneLineError(runCli(["prepare", "-i", input, "-o", join(ro, "a", "b", "out"), "-q"]), /read-only file system \(EROFS\)/);
  });
});
