/**
 * lenpred as a dependency, as a new user gets it: `npm pack` the current source, `npm install` the tarball into a
 * fresh project offline, then run the README's library example (a bundled model by name), type-check it against
 * the shipped .d.ts, run the installed bin, and check what `import "lenpred"` loads.
 *
 * Offline install: a fresh CI clone has run `npm ci`, which fills npm's cache with tarballs but not with the
 * registry metadata that resolving `lenpred`'s ranges needs (`npm install --offline` → ENOTCACHED). So the test
 * project starts with a hard-linked copy of the repo's production dependency tree (from package-lock.json): npm
 * builds the ideal tree from that node_modules, finds every edge satisfied and adds only the tarball.
 */
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { LengthPredictor } from "../src/predictor/length-predictor.js";
import { repoRoot } from "../src/util/paths.js";
import { tempDir } from "./helpers/tmp.js";

function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 120_000, ...opts, env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: "skip", ...opts.env } });
  return { code: r.status ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** The README's "## Library" TypeScript block, verbatim. */
function readmeLibraryExample(): string {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const m = /## Library\s+```ts\n([\s\S]*?)```/.exec(readme);
  if (!m) throw new Error("README.md has no ```ts block under ## Library");
  return m[1]!;
}

/** dist/ has a .js and .d.ts for every src/ module, none older than its source, and nothing else (no stale files). */
function distIsFresh(): boolean {
  const src = join(repoRoot, "src");
  const dist = join(repoRoot, "dist");
  if (!existsSync(dist)) return false;
  const want = new Set<string>();
  for (const rel of readdirSync(src, { recursive: true, encoding: "utf8" })) {
    if (!rel.endsWith(".ts") || rel.endsWith(".d.ts")) continue;
    const base = rel.slice(0, -3);
    for (const out of [`${base}.js`, `${base}.d.ts`]) {
      want.add(out);
      const o = join(dist, out);
      if (!existsSync(o) || statSync(o).mtimeMs < statSync(join(src, rel)).mtimeMs) return false;
    }
  }
  return readdirSync(dist, { recursive: true, encoding: "utf8" }).every((f) => want.has(f) || statSync(join(dist, f)).isDirectory());
}

const root = tempDir("lenpred-package-");
const stage = join(root, "stage");
const proj = join(root, "proj");
let packed: { filename: string; files: { path: string }[] };
let installLog = "";

beforeAll(() => {
  // Stage the package from the current source (not a possibly stale dist/): the shipped files + a fresh build.
  // CI builds right before the tests, so dist/ is usually fresh and copying it saves a tsc run.
  mkdirSync(stage);
  for (const f of ["package.json", "README.md", "LICENSE", "docs", "assets", "models"]) cpSync(join(repoRoot, f), join(stage, f), { recursive: true });
  if (distIsFresh()) cpSync(join(repoRoot, "dist"), join(stage, "dist"), { recursive: true });
  else {
    const tsc = run(process.execPath, [join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "-p", join(repoRoot, "tsconfig.json"), "--outDir", join(stage, "dist")]);
    if (tsc.code !== 0) throw new Error(`tsc failed:\n${tsc.stdout}${tsc.stderr}`);
  }
  const pack = run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", root], { cwd: stage });
  if (pack.code !== 0) throw new Error(`npm pack failed:\n${pack.stderr}`);
  packed = (JSON.parse(pack.stdout) as (typeof packed)[])[0]!;

  // A fresh project whose node_modules already holds lenpred's production dependencies (hard links).
  mkdirSync(join(proj, "node_modules"), { recursive: true });
  writeFileSync(join(proj, "package.json"), JSON.stringify({ name: "uses-lenpred", version: "1.0.0", private: true, type: "module" }));
  const lock = JSON.parse(readFileSync(join(repoRoot, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean }> };
  for (const [key, entry] of Object.entries(lock.packages).sort(([a], [b]) => a.localeCompare(b))) {
    if (!key.startsWith("node_modules/") || entry.dev) continue;
    const from = join(repoRoot, key);
    const to = join(proj, key);
    if (!existsSync(from) || existsSync(to)) continue; // optional platform packages absent here; nested ones came with their parent
    mkdirSync(dirname(to), { recursive: true });
    const cp = run("cp", ["-al", from, to]);
    if (cp.code !== 0) throw new Error(`cp -al ${from}: ${cp.stderr}`);
  }
  const install = run("npm", ["install", "--offline", "--no-audit", "--no-fund", join(root, packed.filename)], { cwd: proj });
  installLog = install.stdout + install.stderr;
  if (install.code !== 0) throw new Error(`npm install --offline of the tarball failed:\n${installLog}`);
}, 120_000);

describe("lenpred installed from its npm tarball", () => {
  it("ships LICENSE, dist with types, the bundled models, and no source maps pointing at unshipped src/", () => {
    const paths = packed.files.map((f) => f.path);
    expect(paths).toContain("LICENSE");
    expect(paths).toContain("dist/index.d.ts");
    expect(paths).toContain("models/alpaca-s3/lenpred.json");
    expect(paths.filter((p) => p.endsWith(".map"))).toEqual([]);
    expect(paths.filter((p) => p.startsWith("src/"))).toEqual([]);
    expect(readFileSync(join(stage, "LICENSE"), "utf8")).toContain("Apache License");
    const pkg = JSON.parse(readFileSync(join(stage, "package.json"), "utf8")) as Record<string, unknown>;
    expect(pkg).toHaveProperty("repository");
    expect(pkg).toHaveProperty("homepage");
    expect(pkg).toHaveProperty("bugs");
    expect(installLog).not.toMatch(/EBADENGINE/);
  });

  it("runs the README's library example with a bundled model name, giving the repo's predictions", async () => {
    const example = readmeLibraryExample();
    expect(example).toMatch(/LengthPredictor\.load\("alpaca-s3"\)/);
    writeFileSync(join(proj, "example.mjs"), example);
    const r = run(process.execPath, ["example.mjs"], { cwd: proj });
    expect(r.code, r.stderr).toBe(0);
    const [reserve, upper, many, safe] = r.stdout.trim().split(/\s+/).map(Number);
    const p = await LengthPredictor.load(join(repoRoot, "models", "alpaca-s3"));
    try {
      expect(reserve).toBe(await p.predictLength("Write a haiku about autumn."));
      expect(upper).toBe((await p.predict("Explain how TCP congestion control works.")).upperBound);
      expect(many).toBe(2);
      expect(safe).toBe((await p.predict("Explain quicksort.", { quantile: 0.9 })).upperBound);
    } finally {
      await p.dispose();
    }
  });

  it("type-checks the README example against the shipped declarations (types resolve, not any)", () => {
    const body = readmeLibraryExample() + '\n// @ts-expect-error predictLength returns a number\nconst wrong: string = reserve;\nexport { wrong };\n';
    writeFileSync(join(proj, "example.ts"), body);
    writeFileSync(join(proj, "tsconfig.json"), JSON.stringify({
      compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, skipLibCheck: true, typeRoots: [join(repoRoot, "node_modules", "@types")], types: ["node"] },
      files: ["example.ts"],
    }));
    const r = run(process.execPath, [join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], { cwd: proj });
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it("exports the bundled models' paths; the installed bin predicts with a bundled name", () => {
    const script = `import { bundledModels } from "lenpred";
      import { existsSync } from "node:fs";
      import { fileURLToPath } from "node:url";
      const viaExport = fileURLToPath(import.meta.resolve("lenpred/models/vicuna-7b/lenpred.json"));
      console.log(JSON.stringify({ names: Object.keys(bundledModels), ok: existsSync(bundledModels["alpaca-s3"] + "/lenpred.json"), viaExport }));`;
    const r = run(process.execPath, ["--input-type=module", "-e", script], { cwd: proj });
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { names: string[]; ok: boolean; viaExport: string };
    expect(got.names).toEqual(["alpaca-s3", "vicuna-7b"]);
    expect(got.ok).toBe(true);
    expect(got.viaExport).toBe(join(proj, "node_modules", "lenpred", "models", "vicuna-7b", "lenpred.json"));
    const bin = run(join(proj, "node_modules", ".bin", "lenpred"), ["predict", "--model", "vicuna-7b", "--no-probabilities", "Write a haiku about autumn."], { cwd: proj });
    expect(bin.code, bin.stderr).toBe(0);
    expect(JSON.parse(bin.stdout)).toHaveProperty("upperBound");
  });

  it("import \"lenpred\" loads neither the server, the plotting stack nor onnxruntime", () => {
    // A resolve hook that reports every package an ESM import reaches (fastify/prom-client are CJS: also via require.cache).
    writeFileSync(join(proj, "hooks.mjs"), `export async function resolve(s, c, next) { const r = await next(s, c);
      const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(r.url); if (m) process.stderr.write("PKG " + m[1] + "\\n"); return r; }`);
    writeFileSync(join(proj, "probe.mjs"), `import { register, createRequire } from "node:module";
      register("./hooks.mjs", import.meta.url);
      await import("lenpred");
      const cjs = Object.keys(createRequire(import.meta.url).cache).map((k) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(k)?.[1]).filter(Boolean);
      process.stderr.write(cjs.map((p) => "PKG " + p + "\\n").join(""));`);
    const r = run(process.execPath, ["probe.mjs"], { cwd: proj });
    expect(r.code, r.stderr).toBe(0);
    const loaded = new Set([...r.stderr.matchAll(/^PKG (\S+)$/gm)].map((m) => m[1]!));
    expect(loaded.has("lenpred")).toBe(true); // the probe sees the import itself
    for (const heavy of ["fastify", "@fastify/swagger", "prom-client", "vega", "vega-lite", "onnxruntime-node"]) expect(loaded.has(heavy), heavy).toBe(false);
  });
});
