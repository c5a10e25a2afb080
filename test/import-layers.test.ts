/**
 * Imports point down and never go round in a circle (docs/CONVENTIONS.md): every relative import of src/,
 * static, dynamic or type-only, checked against the layer order below.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../src/util/paths.js";

/**
 * Lower number = lower layer; a module may import its own layer or lower ones. Training and inference both
 * build on model/ and do not import each other (train/ sits below predictor/ so that predictor/ may one day
 * use it, never the reverse).
 */
const LAYER: Record<string, number> = {
  util: 0,
  data: 1, engine: 1, tokenizers: 1, hub: 1,
  "model-dir": 2,
  model: 3,
  baselines: 4, metrics: 4,
  train: 5,
  predictor: 6, simulate: 6,
  serve: 7, online: 7, proxy: 7, commands: 7,
  ".": 8, // src/cli.ts, src/index.ts
};
/** Files outside their folder's layer. */
const FILE_LAYER: Record<string, number> = {};

const src = join(repoRoot, "src");
const files = readdirSync(src, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"));
const SPEC = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)\.js["']/gm;

function importsOf(rel: string): string[] {
  const text = readFileSync(join(src, rel), "utf8");
  return [...text.matchAll(SPEC)].map((m) => relative(src, resolve(dirname(join(src, rel)), m[1]! + ".ts")));
}
const folder = (rel: string) => (rel.includes("/") ? rel.slice(0, rel.indexOf("/")) : ".");
const layerOf = (rel: string) => FILE_LAYER[rel] ?? LAYER[folder(rel)]!;
const graph = new Map(files.map((f) => [f, importsOf(f)]));

describe("import layers", () => {
  it("every src folder has a layer", () => {
    expect(files.map(folder).filter((d) => LAYER[d] === undefined)).toEqual([]);
  });

  it("no import points up a layer", () => {
    const up: string[] = [];
    for (const [f, deps] of graph) for (const d of deps) if (layerOf(d) > layerOf(f)) up.push(`${f} → ${d}`);
    expect(up).toEqual([]);
  });

  it("no import cycles", () => {
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const stack: string[] = [];
    const visit = (f: string) => {
      state.set(f, "open");
      stack.push(f);
      for (const d of graph.get(f) ?? []) {
        if (state.get(d) === "open") cycles.push([...stack.slice(stack.indexOf(d)), d].join(" → "));
        else if (!state.has(d)) visit(d);
      }
      stack.pop();
      state.set(f, "done");
    };
    for (const f of files) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });
});
