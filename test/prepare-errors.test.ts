import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "./helpers/cli.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir();
const good = [
  { instruction: "Say hi", input: "", output: "hi" },
  { instruction: "Count", input: "to three", output: "one two three" },
];

/** Run prepare on `content`; assert a clear error naming `expected`, exit 2, and nothing left behind. */
function expectFailure(name: string, content: string | undefined, expected: RegExp, extra: string[] = []) {
  const work = join(dir, name);
  mkdirSync(work);
  const input = join(work, "input.json");
  if (content !== undefined) writeFileSync(input, content);
  const out = join(work, "out");
  const r = runCli(["prepare", "--input", input, "--out", out, ...extra]);
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toMatch(/^lenpred: error: /);
  expect(r.stderr).toMatch(expected);
  expect(r.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
  expect(existsSync(out)).toBe(false);
  expect(readdirSync(work).filter((f) => f !== "input.json")).toEqual([]);
  return r;
}

describe("prepare: bad input gives a clear error, exit 2, and no output", () => {
  it("truncated JSON names the file and the record being read", () => {
    const text = JSON.stringify(good);
    expectFailure("truncated", text.slice(0, text.length - 20), /input\.json, record 1: malformed JSON array/);
  });
  it("a record missing `output` names record and field", () => {
    expectFailure("missing", JSON.stringify([good[0], { instruction: "x", input: "" }]), /input\.json, record 1, field 'output': missing required field/);
  });
  it("a non-string prompt in a JSONL log names record and field", () => {
    const lines = [{ prompt: "ok", output: "ok" }, { prompt: "ok", output: "ok" }, { prompt: 42, output: "x" }];
    expectFailure("nonstring", lines.map((l) => JSON.stringify(l)).join("\n"), /input\.json, record 2, field 'prompt': expected a string, got number 42/);
  });
  it("an empty file", () => {
    expectFailure("empty", "", /input\.json: file is empty/);
    expectFailure("blank", "  \n\n", /input\.json: file is empty/);
    expectFailure("emptyarray", "[]", /input\.json: no examples in the input/);
  });
  it("a missing file", () => {
    expectFailure("nofile", undefined, /input\.json: file not found/);
  });
  it("an unknown tokenizer", () => {
    expectFailure("tok", JSON.stringify(good), /unknown tokenizer 'gpt-17'/, ["--tokenizer", "gpt-17"]);
  });
  it("an unknown length label and a length file without the column", () => {
    const lengths = join(dir, "len.json");
    writeFileSync(lengths, JSON.stringify([{ id: "1", L_gt: 3 }]));
    expectFailure("label", JSON.stringify(good), /unknown --label 'median'/, ["--lengths", lengths, "--label", "median"]);
    expectFailure("nocol", JSON.stringify(good), /len\.json, record 0, field 'L_t\*'/, ["--lengths", lengths, "--label", "max"]);
  });

  it("a failed run leaves an existing output directory untouched", () => {
    const work = join(dir, "keep");
    const out = join(work, "out");
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "stats.json"), "old");
    const input = join(work, "bad.json");
    writeFileSync(input, JSON.stringify([good[0], { instruction: 5, output: "x" }]));
    const r = runCli(["prepare", "--input", input, "--out", out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.json, record 1, field 'instruction'/);
    expect(readFileSync(join(out, "stats.json"), "utf8")).toBe("old");
    expect(readdirSync(work).sort()).toEqual(["bad.json", "out"]);
  });

  it("a good run prints the summary and exits 0", () => {
    const work = join(dir, "ok");
    mkdirSync(work);
    const input = join(work, "in.json");
    writeFileSync(input, JSON.stringify(good));
    const r = runCli(["prepare", "--input", input, "--out", join(work, "out"), "--val-fraction", "0.5"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/prepared 2 examples/);
    expect(r.stdout).toMatch(/train 1, val 1/);
    expect(readdirSync(join(work, "out")).sort()).toEqual(["scheme.json", "stats.json", "train.jsonl", "val.jsonl"]);
  });
});
