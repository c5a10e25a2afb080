import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readExamples } from "../src/data/sources.js";
import { ObservationStore } from "../src/online/store.js";
import { runCli } from "./helpers/cli.js";
import { tempDir } from "./helpers/tmp.js";

describe("prepare reads a state dir's observation segments", () => {
  it("streams every segment in order as log records, and `lenpred prepare` trains on them", async () => {
    const root = tempDir();
    const state = join(root, "state");
    const store = await ObservationStore.open(state, { segmentBytes: 1024 });
    for (let i = 0; i < 60; i++) await store.append([{ prompt: `question number ${i} about topic ${i % 7}`, output_tokens: 10 + i, model: "gpt" }]);
    await store.close();
    const seen = [];
    for await (const ex of readExamples(state, {})) seen.push(ex.outputTokens);
    expect(seen).toEqual(Array.from({ length: 60 }, (_, i) => 10 + i));

    const out = join(root, "prep");
    const r = runCli(["prepare", "--input", state, "--out", out, "--val-fraction", "0.2"]);
    expect(r.code, r.stderr).toBe(0);
    const lines = ["train", "val"].flatMap((s) => readFileSync(join(out, `${s}.jsonl`), "utf8").trim().split("\n").map((l) => JSON.parse(l)));
    expect(lines.map((l) => l.output_tokens).sort((a, b) => a - b)).toEqual(seen);
  });

  it("a directory that is not a state dir is a clear error", async () => {
    const d = join(tempDir(), "plain");
    mkdirSync(d);
    const it = readExamples(d, {});
    await expect(it.next()).rejects.toThrow(/not a state dir/);
  });
});
