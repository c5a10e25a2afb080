import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../src/util/paths.js";
import { runCli } from "./helpers/cli.js";

const script = ["/usr/bin/script", "/bin/script"].find((p) => existsSync(p));

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
      expect(r.stderr).toMatch(/^lenpred: error: /); // the same form as lenpred's own errors
    }
    expect(runCli(["predict", "--quantile", "2", "x"]).code).toBe(2); // lenpred's own check
    expect(runCli(["predict", "--help"]).code).toBe(0);
    expect(runCli(["--version"]).code).toBe(0);
  });

  it.skipIf(!script)("bare `lenpred predict` on a terminal says what to give (util-linux script provides the tty)", () => {
    const cmd = `${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(join(repoRoot, "src", "cli.ts"))} predict`;
    const r = spawnSync(script!, ["-qec", cmd, "/dev/null"], { cwd: repoRoot, encoding: "utf8", timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stdout).toMatch(/no prompt: give a prompt argument, pipe it on stdin \(or `-`\), or --file/);
    expect(r.stdout).not.toMatch(/not both/);
  });
});
