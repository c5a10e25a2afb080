/** Summarise an onnxruntime profile trace (written with the session's profilePrefix): kernel time per op type. */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Print the top op types by kernel time of the newest trace whose name starts with `prefix` in `dir`, to stderr. */
export function printOrtProfile(prefix: string, label: string, top = 20, dir = tmpdir()): void {
  const file = readdirSync(dir).filter((f) => f.startsWith(prefix)).map((f) => join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (!file) return;
  const events = JSON.parse(readFileSync(file, "utf8")) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
  const byOp = new Map<string, number>();
  let total = 0;
  for (const e of events) {
    if (e.cat !== "Node" || !e.name.endsWith("_kernel_time")) continue;
    const k = e.args?.op_name ?? "?";
    byOp.set(k, (byOp.get(k) ?? 0) + e.dur);
    total += e.dur;
  }
  console.error(`profile ${label} (${file}): kernel total ${(total / 1e6).toFixed(2)} s over all profiled runs`);
  for (const [k, v] of [...byOp].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.error(`  ${k.padEnd(28)} ${(v / 1e6).toFixed(3)} s  ${((100 * v) / total).toFixed(1)}%`);
  }
}
