/**
 * Bench: wall time of `lenpred simulate`'s six default policies on ~52k requests, next to a peer measured in
 * the same run (reading + validating the trace JSONL), because absolute timings on a shared machine are noisy.
 *
 *   npx tsx bench/simulate.ts                     # synthetic Alpaca-like trace of 52,002 requests
 *   npx tsx bench/simulate.ts --data <prepared dir> --split all
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_POLICIES, loadInputs, runPolicies } from "../src/simulate/index.js";
import { readSplitLengths, resolveSplitFiles } from "../src/data/prepared-dir.js";
import { createRng } from "../src/util/rng.js";

const args = process.argv.slice(2);
const arg = (k: string) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
let data = arg("--data");
const split = arg("--split") ?? (data ? "all" : "test");
let tmp: string | undefined;
if (!data) {
  // Log-normal lengths roughly like Alpaca (median prompt ~20, output ~45 tokens, long tail).
  tmp = mkdtempSync(join(tmpdir(), "lenpred-bench-"));
  const rng = createRng("bench");
  const g = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const lines: string[] = [];
  for (let i = 0; i < 52_002; i++) {
    const p = Math.max(1, Math.round(Math.exp(3 + 0.6 * g())));
    const o = Math.max(1, Math.round(Math.exp(3.8 + 0.9 * g())));
    lines.push(JSON.stringify({ id: i, prompt: "", prompt_tokens: p, output_tokens: o, output_length_bucket: 0 }));
  }
  writeFileSync(join(tmp, "test.jsonl"), lines.join("\n") + "\n");
  writeFileSync(join(tmp, "scheme.json"), JSON.stringify({ buckets: { kind: "uniform", edges: [51, 102, 153, 204, 256, 307, 358, 409, 460, 512] } }));
  data = tmp;
}
try {
  const t0 = performance.now();
  await readSplitLengths(resolveSplitFiles(data, split).files);
  const readS = (performance.now() - t0) / 1000;
  const inputs = await loadInputs({ data, split, predictor: "noisy:0.5", model: "gpt-j-6b", gpu: "a100-80gb", seed: 0, policies: [...DEFAULT_POLICIES] });
  const t1 = performance.now();
  const { report } = runPolicies(inputs, { policies: [...DEFAULT_POLICIES], seed: 0, sim: { timeline: true } });
  const simS = (performance.now() - t1) / 1000;
  console.log(`requests: ${inputs.trace.n}`);
  console.log(`peer (read + validate trace JSONL): ${readS.toFixed(2)} s`);
  for (const [k, m] of Object.entries(report.policies)) console.log(`  ${k.padEnd(10)} ${m!.wall_s.toFixed(2)} s  (${m!.iterations} iterations)`);
  console.log(`six policies: ${simS.toFixed(2)} s = ${(simS / readS).toFixed(1)}x the trace read`);
} finally {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}
