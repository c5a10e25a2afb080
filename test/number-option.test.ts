import { describe, expect, it } from "vitest";
import { parseNumberOption } from "../src/util/number-option.js";
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
  it("a bad numeric option exits 2 with one error line in every subcommand", () => {
    for (const args of [["prepare", "-i", "x", "-o", "y", "--num-buckets", "0"], ["serve", "--synthetic", "--port", "-1"], ["simulate", "--data", "x", "--limit", "-1"]]) {
      const r = runCli(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(/^lenpred: error: --[a-z-]+ expects an integer >= /);
    }
  });
});
