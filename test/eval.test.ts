import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { uniformBuckets } from "../src/data/buckets.js";
import { runCli } from "./helpers/cli.js";
import { syntheticRecords, writePrepared } from "./helpers/prepared-fixture.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir();
const data = join(dir, "prep");
const val = syntheticRecords(20, 2);
writePrepared(data, { train: syntheticRecords(10, 1), val });
const s = uniformBuckets(512, 4);

function predsFile(name: string, lines: unknown[]): string {
  const f = join(dir, name);
  writeFileSync(f, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
  return f;
}

// A perfect-bucket predictor whose point estimate is the true length + 10.
const good = val.map((r, index) => ({ index, id: r.id, bucket: r.output_length_bucket, upperBound: s.edges[r.output_length_bucket], expectedTokens: r.output_tokens + 10 }));

describe("lenpred eval", () => {
  it("scores a predictions file (order-independent); with --json stdout is only the JSON, the text goes to stderr", () => {
    const f = predsFile("good.jsonl", [...good].reverse());
    const r = runCli(["eval", "--data", data, "--split", "val", "--preds", f, "--json"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("bucket accuracy");
    expect(r.stderr).toContain("confusion matrix");
    expect(r.stderr).not.toMatch(/warning/);
    expect(r.stdout.trim().split("\n")).toHaveLength(1);
    const report = JSON.parse(r.stdout);
    expect(report.n).toBe(20);
    expect(report.bucketAccuracy).toBe(1);
    expect(report.mae).toBeCloseTo(10, 9);
    expect(report.acc50).toBe(1);
    expect(report.underAllocationRate).toBe(0);
    expect(report.kendallTauB).toBeCloseTo(1, 9);
  });

  it("compares several predictions files in one table (Markdown with --markdown)", () => {
    const worse = good.map((g) => ({ ...g, expectedTokens: g.expectedTokens + 90 }));
    const r = runCli(["eval", "--data", data, "--preds", predsFile("good-a.jsonl", good), predsFile("worse-b.jsonl", worse), "--markdown", "--json"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/\| metric \| good-a \| worse-b \|/);
    expect(r.stderr).toMatch(/\| MAE \(tokens\) = Error \| 10\.0 \| 100\.0 \|/);
    const out = JSON.parse(r.stdout);
    expect(out.reports.map((x: { mae: number }) => x.mae)).toEqual([expect.closeTo(10, 9), expect.closeTo(100, 9)]);
  });

  it("warns (but scores) when upperBound is not the scheme's edge for the bucket", () => {
    const margin = good.map((g, i) => (i < 3 ? { ...g, upperBound: g.upperBound + 7 } : g));
    const r = runCli(["eval", "--data", data, "--preds", predsFile("margin.jsonl", margin)]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: .*margin\.jsonl: 3 of 20 predictions have upperBound != edges\[bucket\]/);
  });

  it("writes a confusion-matrix SVG with --plot", () => {
    const plot = join(dir, "cm.svg");
    const r = runCli(["eval", "--data", data, "--preds", predsFile("good2.jsonl", good), "--plot", plot]);
    expect(r.code).toBe(0);
    const svg = readFileSync(plot, "utf8");
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain("predicted bucket");
    expect(runCli(["eval", "--data", data, "--preds", predsFile("good3.jsonl", good), "--plot", join(dir, "cm.png")]).stderr).toMatch(/SVG/);
  });

  it.each([
    ["missing records", good.slice(1), /1 of 20 records .* have no prediction \(indices 0\)/],
    ["an index beyond the split", [...good, { ...good[0], index: 20, id: undefined }], /index 20 is out of range: .*val\.jsonl has 20 records/],
    ["a duplicate index", [...good, good[3]], /record 20, field 'index': duplicate prediction for index 3/],
    ["a mismatched id", good.map((g, i) => (i === 4 ? { ...g, id: "other" } : g)), /record 4, field 'id': id "other" does not match/],
    ["a bucket out of range", good.map((g, i) => (i === 2 ? { ...g, bucket: 4 } : g)), /record 2, field 'bucket': bucket 4 out of range/],
    ["a negative expectedTokens", good.map((g, i) => (i === 6 ? { ...g, expectedTokens: -1 } : g)), /record 6, field 'expectedTokens'/],
    ["wrong-length probabilities", good.map((g, i) => (i === 1 ? { ...g, probabilities: [1] } : g)), /record 1, field 'probabilities'/],
  ])("rejects %s with a clear error and exit 2", (name, lines, msg) => {
    const r = runCli(["eval", "--data", data, "--preds", predsFile(`bad-${String(name).replace(/\W/g, "")}.jsonl`, lines as unknown[])]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(msg as RegExp);
  });

  it("names the file when the data directory or split is wrong", () => {
    const f = predsFile("g4.jsonl", good);
    expect(runCli(["eval", "--data", join(dir, "nope"), "--preds", f]).stderr).toMatch(/scheme\.json.*not a prepared data directory/);
    expect(runCli(["eval", "--data", data, "--split", "test", "--preds", f]).stderr).toMatch(/test\.jsonl: file not found/);
    expect(runCli(["eval", "--data", data, "--split", "dev", "--preds", f]).stderr).toMatch(/unknown split 'dev'/);
    expect(existsSync(join(dir, "nope"))).toBe(false);
  });
});
