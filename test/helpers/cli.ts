/** Run the real CLI (src/cli.ts under tsx) in a child process and capture its output and exit code. */
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { repoRoot } from "../../src/util/paths.js";

/** tsx's loader by absolute URL, so the CLI runs from any working directory (`--import tsx` resolves from cwd). */
const tsxDir = join(repoRoot, "node_modules", "tsx");
const TSX_IMPORT = pathToFileURL(join(tsxDir, (JSON.parse(readFileSync(join(tsxDir, "package.json"), "utf8")) as { exports: { ".": string } }).exports["."])).href;

export interface CliResult { code: number; stdout: string; stderr: string }

export function runCli(args: string[], opts: { cwd?: string; env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, ["--import", TSX_IMPORT, join(repoRoot, "src", "cli.ts"), ...args], {
    cwd: opts.cwd ?? repoRoot,
    env: { ...process.env, ...opts.env },
    input: opts.input,
    encoding: "utf8",
    timeout: opts.timeoutMs ?? 120_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Run `lenpred train ARGS` with progress on (no TTY: the first step prints "  step 1/N …") and send SIGINT there,
 * mid-epoch 1; resolves with the exit code (130 once the resumable checkpoint is written).
 */
export function trainInterruptedAtFirstStep(args: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(repoRoot, "src", "cli.ts"), "train", ...args.filter((a) => a !== "--no-progress")], { cwd: repoRoot });
    let text = "";
    let sent = false;
    const onData = (d: Buffer) => {
      text += d.toString();
      if (!sent && text.includes("step 1/")) { sent = true; child.kill("SIGINT"); }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("close", (c) => resolve(c));
  });
}
