/**
 * Bench layout (docs/CONVENTIONS.md): bench/<area>/<name>.ts are runnable benches, each with an npm script
 * (`bench:<area>` for bench/<area>/<area>.ts, else `bench:<area>:<name>`); shared helpers live in bench/lib/;
 * nothing under bench/ imports from test/ (tests may use bench/lib helpers, not the other way round).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve, dirname } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../src/util/paths.js";

const bench = join(repoRoot, "bench");
const files = readdirSync(bench, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts")).sort();
const scripts = (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
const SPEC = /(?:from|import\()\s*"(\.{1,2}\/[^"]+)"/g;

describe("bench layout", () => {
  it("every bench is in an area folder or bench/lib", () => {
    expect(files.filter((f) => !f.includes("/"))).toEqual([]);
  });

  it("every runnable bench has its npm script, named after its folder and file", () => {
    const runnable = files.filter((f) => !f.startsWith("lib/"));
    expect(runnable.length).toBeGreaterThan(5);
    for (const f of runnable) {
      const [area, file] = f.split("/") as [string, string];
      const name = file.replace(/\.ts$/, "");
      const script = name === area ? `bench:${area}` : `bench:${area}:${name}`;
      expect(scripts[script], `${script} for bench/${f}`).toBe(`tsx bench/${f}`);
    }
    for (const [name, cmd] of Object.entries(scripts)) {
      if (name.startsWith("bench:")) expect(files.map((f) => `tsx bench/${f}`), name).toContain(cmd);
    }
  });

  it("no bench imports from test/", () => {
    const bad: string[] = [];
    for (const f of files) {
      for (const m of readFileSync(join(bench, f), "utf8").matchAll(SPEC)) {
        const target = relative(repoRoot, resolve(dirname(join(bench, f)), m[1]!));
        if (!target.startsWith("src/") && !target.startsWith("bench/") && !target.startsWith("node_modules/")) bad.push(`bench/${f} → ${target}`);
      }
    }
    expect(bad).toEqual([]);
  });
});
