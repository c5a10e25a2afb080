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
});
