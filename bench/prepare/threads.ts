/**
 * Token counting on worker threads vs on the main thread: `prepare` on the Alpaca data (needs ../shared),
 * alternating the two settings so both see the same machine load; prints medians and their ratio.
 *
 *   npm run bench:prepare:threads -- [rounds=3] [threads=2]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prepareDataset } from "../../src/data/prepare.js";
import { sharedDataFile } from "../../src/util/paths.js";

const input = sharedDataFile("alpaca/alpaca_data.json");
if (!input) {
  console.log("skipped: needs ../shared/data/alpaca/alpaca_data.json");
  process.exit(0);
}
const rounds = Number(process.argv[2] ?? 3);
const threads = Number(process.argv[3] ?? 2);
const dir = mkdtempSync(join(tmpdir(), "lenpred-bench-"));
const times: Record<string, number[]> = { main: [], workers: [] };
try {
  for (let r = 0; r < rounds; r++) {
    for (const [name, t] of [["main", 0], ["workers", threads]] as const) {
      const t0 = performance.now();
      await prepareDataset({ input, out: join(dir, name), threads: t });
      times[name]!.push((performance.now() - t0) / 1000);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const [k, v] of Object.entries(times)) console.log(`${k.padEnd(8)} ${v.map((x) => x.toFixed(1)).join(" ")} s  (median ${median(v).toFixed(1)} s)`);
console.log(`speed-up with ${threads} worker threads: ${(median(times.main!) / median(times.workers!)).toFixed(2)}x`);
