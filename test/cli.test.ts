import { describe, expect, it } from "vitest";
import { runCli } from "./helpers/cli.js";

describe("lenpred CLI", () => {
  it("prints help listing its subcommands", () => {
    const r = runCli(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage: lenpred");
    expect(r.stdout).toContain("info");
  });
  it("rejects an unknown subcommand with a non-zero exit", () => {
    const r = runCli(["no-such-command"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unknown command/);
  });

  it("exits 2 on every usage error: commander's (unknown option, missing value, bad choice) as lenpred's own", () => {
    for (const args of [["no-such-command"], ["predict", "--no-such-option", "x"], ["predict", "--model"], ["serve", "--log-level", "loud"], ["eval"]]) {
      const r = runCli(args, { input: "" });
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/error|unknown/i);
    }
    expect(runCli(["predict", "--quantile", "2", "x"]).code).toBe(2); // lenpred's own check
    expect(runCli(["predict", "--help"]).code).toBe(0);
    expect(runCli(["--version"]).code).toBe(0);
  });
});
