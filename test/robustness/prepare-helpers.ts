/** Fixtures for the prepare robustness tests: small tmpfs mounts (root only) and generated inputs. */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";

/** Mount a tmpfs of `size` at `dir` (created); false when not root or mounting is not allowed here. */
export function mountTmpfs(dir: string, size: string, extra = ""): boolean {
  if (process.getuid?.() !== 0) return false;
  mkdirSync(dir, { recursive: true });
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}${extra ? "," + extra : ""}`, "tmpfs", dir], { encoding: "utf8" });
  return r.status === 0;
}

export function remount(dir: string, opts: string): boolean {
  return spawnSync("mount", ["-o", `remount,${opts}`, dir]).status === 0;
}

export function unmount(dir: string): void {
  spawnSync("umount", ["-l", dir]);
}

/** A mount-capable environment (root with CAP_SYS_ADMIN): decided once by trying. */
export function canMount(probeDir: string): boolean {
  if (!mountTmpfs(probeDir, "64k")) return false;
  unmount(probeDir);
  return true;
}

/** `n` Alpaca records with answers of ~`answerChars` characters, written as a JSON array. */
export function writeAlpaca(file: string, n: number, answerChars = 40, prefix = "question"): void {
  const recs = Array.from({ length: n }, (_, i) => ({ instruction: `${prefix} ${i}`, input: "", output: `answer ${i} `.padEnd(answerChars, "x y ") }));
  writeFileSync(file, JSON.stringify(recs));
}

/** The temporaries (`*.tmp-*`) among `names`. */
export const temps = (names: string[]) => names.filter((f) => f.includes(".tmp-"));
