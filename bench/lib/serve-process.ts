/**
 * A real `lenpred serve` child process for the benches: started on a free port, resolved once its pino "ready"
 * line (with the address) says the model is loaded.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "../../src/util/paths.js";

export interface ServeProcess { child: ChildProcess; url: string; log: () => string }

export async function startServeProcess(args: string[]): Promise<ServeProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", join(repoRoot, "src", "cli.ts"), "serve", "--port", "0", ...args], { cwd: repoRoot });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const url = await new Promise<string>((resolve, reject) => {
    // stdout is pino JSON lines; "ready" (with the address) is logged once the model is loaded.
    const check = () => {
      const m = /"address":"(http:\/\/[^"]+)"[^\n]*"msg":"ready"/.exec(out);
      if (m) resolve(m[1]!);
    };
    child.stdout!.on("data", check);
    child.on("exit", (code) => reject(new Error(`lenpred serve exited (${code}) before ready:\n${out}`)));
  });
  return { child, url, log: () => out };
}
