/**
 * Evidence that `prepare` streams: peak RSS for a small and a 10× larger JSONL log (same record shape, each
 * record padded with an ignored 8 KB field so the file is big but tokenizing stays cheap). Streaming means the
 * ratio of peak RSS stays near 1 while the input grows 10×.
 *
 *   npm run bench:prepare:memory -- [smallMB=30]
 */
import { spawnSync } from "node:child_process";
import { createWriteStream, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { repoRoot } from "../../src/util/paths.js";

async function makeLog(file: string, mb: number): Promise<number> {
  const out = createWriteStream(file);
  const pad = "z".repeat(8 * 1024);
  let n = 0;
  while (out.bytesWritten + out.writableLength < mb * 2 ** 20) {
    const line = JSON.stringify({ id: n, prompt: `Question ${n}: explain topic ${n % 977} briefly.`, output_tokens: (n * 37) % 900, meta: pad }) + "\n";
    if (!out.write(line)) await once(out, "drain");
    n++;
  }
  out.end();
  await once(out, "finish");
  return n;
}

function peakRss(input: string, outDir: string): { mb: number; seconds: number } {
  const script = `
    const { prepareDataset } = await import(${JSON.stringify(join(repoRoot, "src", "data", "prepare.ts"))});
    const t0 = performance.now();
    await prepareDataset({ input: ${JSON.stringify(input)}, out: ${JSON.stringify(outDir)} });
    console.log(JSON.stringify({ mb: process.resourceUsage().maxRSS / 1024, seconds: (performance.now() - t0) / 1000 }));`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", cwd: repoRoot });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as { mb: number; seconds: number };
}

const small = Number(process.argv[2] ?? 30);
const dir = mkdtempSync(join(tmpdir(), "lenpred-bench-"));
try {
  const rows: string[] = [];
  const results = [];
  for (const mb of [small, small * 10]) {
    const file = join(dir, `log-${mb}.jsonl`);
    const n = await makeLog(file, mb);
    const r = peakRss(file, join(dir, `out-${mb}`));
    results.push(r);
    rows.push(`input ${(statSync(file).size / 2 ** 20).toFixed(0)} MB (${n} records): peak RSS ${r.mb.toFixed(0)} MB, ${r.seconds.toFixed(1)} s`);
    rmSync(file);
  }
  console.log(rows.join("\n"));
  console.log(`peak RSS ratio (10x input / 1x input): ${(results[1]!.mb / results[0]!.mb).toFixed(2)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
