import { describe, expect, it } from "vitest";
import { parseNumberOption, parseQuantileOption } from "../src/util/number-option.js";
import { runCli } from "./helpers/cli.js";

describe("numeric options", () => {
  it("accepts values within the bounds", () => {
    expect(parseNumberOption("--x", "3", { int: true, min: 1 })).toBe(3);
    expect(parseNumberOption("--f", "0", { min: 0, max: 1, maxExclusive: true })).toBe(0);
    expect(parseNumberOption("--lr", "2e-5")).toBe(2e-5);
  });
  it("rejects non-numbers, non-integers and out-of-range values, naming the flag and bounds", () => {
    expect(() => parseNumberOption("--x", "", {})).toThrow("--x expects a number, got ''");
    expect(() => parseNumberOption("--x", "1.5", { int: true, min: 1 })).toThrow("--x expects an integer >= 1, got '1.5'");
    expect(() => parseNumberOption("--x", "0", { int: true, min: 1 })).toThrow("--x expects an integer >= 1, got '0'");
    expect(() => parseNumberOption("--f", "1", { min: 0, max: 1, maxExclusive: true })).toThrow("--f expects a number >= 0 and < 1, got '1'");
    expect(() => parseNumberOption("--f", "Infinity")).toThrow("--f expects a number");
  });
  it("parses a quantile level strictly inside (0, 1)", () => {
    expect(parseQuantileOption("--quantile", "0.9")).toBe(0.9);
    for (const bad of ["0", "1", "2", "-0.5", "", "abc", "NaN"]) {
      expect(() => parseQuantileOption("--quantile", bad)).toThrow(`--quantile must be in (0, 1), got '${bad}'`);
    }
  });
  it("a bad --quantile exits 2 with one error line, before the model is loaded", () => {
    const r = runCli(["predict", "--model", "/nonexistent-model-dir", "--quantile", "1.5", "x"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toEqual(["lenpred: error: --quantile must be in (0, 1), got '1.5'"]);
  });
  it("a bad numeric option exits 2 with one error line in every subcommand", () => {
    for (const args of [["prepare", "-i", "x", "-o", "y", "--num-buckets", "0"], ["serve", "--synthetic", "--port", "-1"], ["simulate", "--data", "x", "--limit", "-1"]]) {
      const r = runCli(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(/^lenpred: error: --[a-z-]+ expects an integer >= /);
    }
  });
});
