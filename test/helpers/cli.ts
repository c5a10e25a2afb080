/** Run the real CLI (src/cli.ts under tsx) in a child process and capture its output and exit code. */
import { spawnSync } from "node:child_process";
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
