/**
 * Item 5: record size is capped (--max-record-bytes, default 8 MiB). A file without newlines (/dev/zero, a
 * sparse file) or one huge record fails fast with one line naming file and record, not a RangeError.
 */
import { closeSync, existsSync, ftruncateSync, openSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readJsonl } from "../../src/util/jsonl.js";
import { runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/tmp.js";
import { temps } from "./prepare-helpers.js";

const dir = tempDir("lenpred-record-size-");
const line = (i: number, output = `answer ${i}`) => JSON.stringify({ prompt: `question ${i}`, output });

function expectTooLong(args: string[], file: string, record: number, limit: number): void {
  const out = join(dir, "out");
  const r = runCli(["prepare", ...args, "-o", out, "-q"], { timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toMatch(/^lenpred: error: [^\n]*\n$/);
  expect(r.stderr).toContain(`${file}, record ${record}: record is longer than ${limit} `);
  expect(r.stderr).toContain("--max-record-bytes");
  expect(existsSync(out)).toBe(false);
  expect(temps(readdirSync(dir))).toEqual([]);
}

describe("record size limit", () => {
  it("/dev/zero (no newline ever) fails at the default limit naming record 0", () => {
    expectTooLong(["-i", "/dev/zero"], "/dev/zero", 0, 8 * 1024 * 1024);
  });

  it("a 2 GB sparse file fails the same way, reading only up to the limit", () => {
    const sparse = join(dir, "sparse.jsonl");
    const fd = openSync(sparse, "w");
    ftruncateSync(fd, 2 * 1024 ** 3);
    closeSync(fd);
    expectTooLong(["-i", sparse, "--max-record-bytes", "1000000"], sparse, 0, 1_000_000);
  });

  it("one long JSONL line names its record; the same file passes with a higher limit", () => {
    const f = join(dir, "long.jsonl");
    writeFileSync(f, [line(0), line(1), line(2, "w ".repeat(5000)), line(3)].join("\n") + "\n");
    expectTooLong(["-i", f, "--max-record-bytes", "4096"], f, 2, 4096);
    const ok = runCli(["prepare", "-i", f, "-o", join(dir, "ok"), "-q", "--max-record-bytes", "20000", "--val-fraction", "0.25"]);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it("one huge JSON array element names its record", () => {
    const f = join(dir, "long.json");
    const recs = [0, 1, 2, 3].map((i) => ({ instruction: `q ${i}`, input: "", output: i === 1 ? "z ".repeat(50_000) : "short" }));
    writeFileSync(f, JSON.stringify(recs));
    expectTooLong(["-i", f, "--max-record-bytes", "10000"], f, 1, 10_000);
  });

  it("readJsonl: a line exactly at the limit passes, one byte more fails; CRLF and a last line without newline work", async () => {
    const f = join(dir, "edge.jsonl");
    const a = JSON.stringify({ s: "x".repeat(100) });
    writeFileSync(f, `${a}\r\n\n${a}`);
    const got = [];
    for await (const r of readJsonl(f, { maxRecordBytes: a.length + 1 })) got.push(r); // + the \r
    expect(got.map((r) => r.index)).toEqual([0, 1]);
    await expect(async () => { for await (const _ of readJsonl(f, { maxRecordBytes: a.length })) void _; }).rejects.toThrow(/edge\.jsonl, record 0: record is longer than/);
  });

  it("bad --max-record-bytes values are refused", () => {
    const r = runCli(["prepare", "-i", "x", "-o", join(dir, "o"), "--max-record-bytes", "0"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--max-record-bytes/);
  });
});
