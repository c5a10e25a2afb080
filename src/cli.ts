#!/usr/bin/env node
/**
 * `lenpred` CLI. Each subcommand lives in its own module under ./commands/ and exports
 * `register(program)`; modules are discovered from that directory so that subcommands can be added
 * without touching this file. Heavy dependencies (onnxruntime, fastify) are imported inside actions,
 * so `lenpred --help` stays fast.
 */
import { Command, CommanderError } from "commander";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { LenpredError } from "./util/errors.js";

const here = dirname(fileURLToPath(import.meta.url));

export async function buildProgram(): Promise<Command> {
  const pkg = JSON.parse(readFileSync(join(here, "..", "package.json"), "utf8")) as { version: string };
  const program = new Command("lenpred")
    .description("Predict an LLM's output length from the prompt (S³-style), evaluate it, serve it, simulate what it buys.")
    .version(pkg.version)
    // Commander's usage errors look like lenpred's own: "lenpred: error: …" on stderr, a pointer to --help rather
    // than the whole help text, and (in main) exit code 2. Subcommands inherit these settings.
    .configureOutput({ outputError: (str, write) => write(`lenpred: ${str}`) })
    .showHelpAfterError("(add --help for usage)")
    .exitOverride();
  const dir = join(here, "commands");
  const ext = here.endsWith("src") ? ".ts" : ".js";
  const files = readdirSync(dir).filter((f) => f.endsWith(ext) && !f.endsWith(".d.ts")).sort();
  for (const f of files) {
    const mod = (await import(pathToFileURL(join(dir, f)).href)) as { register?: (p: Command) => void };
    if (typeof mod.register === "function") mod.register(program);
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    // Commander exits 1 on usage errors (unknown option, missing argument…); lenpred's own usage checks exit 2:
    // one code for every usage error. Help and --version keep 0.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof LenpredError) {
      process.stderr.write(`lenpred: error: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`lenpred: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href || process.argv[1]?.endsWith("/lenpred")) {
  main(process.argv).then((code) => process.exit(code));
}
