import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { BucketScheme } from "../src/data/buckets.js";
import { formatPredictionLines, predictionLine, readPredictionsFile, writePredictionsFile } from "../src/data/predictions-file.js";
import { readPredictions } from "../src/simulate/index.js";
import { tempDir } from "./helpers/tmp.js";

const scheme: BucketScheme = { kind: "uniform", edges: [10, 20, 30] };

describe("predictions file (one writer, one reader)", () => {
  it("rounds expectedTokens to 3 decimals and probabilities to 6, keeps reserveTokens and extra fields", () => {
    const l = predictionLine(4, "a", { bucket: 1, upperBound: 20, expectedTokens: 12.34567, probabilities: [0.1234567, 0.8765433, 0], reserveTokens: 17.123456 });
    expect(l).toEqual({ index: 4, id: "a", bucket: 1, upperBound: 20, expectedTokens: 12.346, probabilities: [0.123457, 0.876543, 0], reserveTokens: 17.123456 });
    expect(predictionLine(0, undefined, { bucket: 0, upperBound: 10, expectedTokens: 1, probabilities: [1, 0, 0] }, { probabilities: false })).toEqual({ index: 0, bucket: 0, upperBound: 10, expectedTokens: 1 });
    const text = formatPredictionLines([{ index: 0, bucket: 0, upperBound: 10, expectedTokens: 3.14159, model: "m", static: { expectedTokens: 2 } } as never]);
    expect(JSON.parse(text)).toEqual({ index: 0, bucket: 0, upperBound: 10, expectedTokens: 3.142, model: "m", static: { expectedTokens: 2 } });
  });

  it("what the writer writes, eval's and simulate's readers read back", async () => {
    const file = join(tempDir(), "p.jsonl");
    const lines = [1, 0].map((i) => ({ ...predictionLine(i, `r${i}`, { bucket: i, upperBound: scheme.edges[i]!, expectedTokens: 5 + i / 3, reserveTokens: 9 + i }), output_tokens: 7 }));
    await writePredictionsFile(file, lines);
    const back = await readPredictionsFile(file, scheme, 2, { idOf: (i) => `r${i}`, allOrNone: ["reserveTokens", "output_tokens"] });
    expect(back.map((l) => [l.index, l.bucket, l.expectedTokens, l.reserveTokens, l.output_tokens])).toEqual([[0, 0, 5, 9, 7], [1, 1, 5.333, 10, 7]]);
    const sim = await readPredictions(file, 2, scheme);
    expect(Array.from(sim.reserve!)).toEqual([9, 10]);
  });

  it("validates the optional fields: output_tokens all or none, probabilities of the scheme's length (simulate too)", async () => {
    const file = join(tempDir(), "p.jsonl");
    const line = (i: number, extra: object) => JSON.stringify({ index: i, bucket: 0, upperBound: 10, expectedTokens: 5, ...extra });
    writeFileSync(file, [line(0, { output_tokens: 3 }), line(1, {})].join("\n") + "\n");
    await expect(readPredictionsFile(file, scheme, 2, { allOrNone: ["output_tokens"] })).rejects.toThrow(/record 1, field 'output_tokens': output_tokens is missing here/);
    expect((await readPredictionsFile(file, scheme, 2)).map((l) => l.output_tokens)).toEqual([3, undefined]);
    writeFileSync(file, [line(0, { output_tokens: 2.5 }), line(1, {})].join("\n") + "\n");
    await expect(readPredictionsFile(file, scheme, 2)).rejects.toThrow(/record 0, field 'output_tokens'/);
    writeFileSync(file, [line(0, { probabilities: [1] }), line(1, {})].join("\n") + "\n");
    await expect(readPredictions(file, 2, scheme)).rejects.toThrow(/record 0, field 'probabilities': expected 3 non-negative probabilities/);
  });

  it("writes nothing when the write fails", async () => {
    const dir = tempDir();
    const file = join(dir, "p.jsonl");
    writeFileSync(file, "old\n");
    await expect(writePredictionsFile(file, [{ index: 0, bucket: 0, upperBound: 10, expectedTokens: 1n } as never])).rejects.toThrow();
    expect(readFileSync(file, "utf8")).toBe("old\n");
  });
});
