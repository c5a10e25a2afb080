/**
 * Single-prompt latency and batch throughput of `LengthPredictor` for one or more model directories, on
 * prompts from a prepared split, measured in the same run so they can be compared as ratios (the first
 * model is the peer the others are divided by). Timings on a shared 2-core box are noisy: read ratios.
 *
 *   npx tsx bench/predict-latency.ts --data /tmp/alpaca-s3 [--n 300] [--threads 2] MODEL_DIR [MODEL_DIR…]
 */
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { readPreparedSplit } from "../src/data/prepared-dir.js";
import { LengthPredictor } from "../src/predictor/length-predictor.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { data: { type: "string" }, n: { type: "string", default: "300" }, threads: { type: "string", default: "2" }, split: { type: "string", default: "val" } },
});
if (!values.data || positionals.length === 0) {
  console.error("usage: npx tsx bench/predict-latency.ts --data PREPARED_DIR [--n 300] [--threads 2] MODEL_DIR [MODEL_DIR...]");
  process.exit(2);
}
const n = Number(values.n);
const prompts = (await readPreparedSplit(values.data, values.split!)).records.slice(0, n).map((r) => r.prompt);

const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const rows: { model: string; p50: number; p95: number; mean: number; batchPerSec: number }[] = [];
for (const dir of positionals) {
  const p = await LengthPredictor.load(dir, { threads: Number(values.threads) });
  for (const pr of prompts.slice(0, 20)) await p.predict(pr); // warm-up (session init, allocator)
  const lat: number[] = [];
  for (const pr of prompts) {
    const t = performance.now();
    await p.predict(pr);
    lat.push(performance.now() - t);
  }
  const t = performance.now();
  await p.predictBatch(prompts);
  const batchPerSec = prompts.length / ((performance.now() - t) / 1000);
  rows.push({ model: dir, p50: q(lat, 0.5), p95: q(lat, 0.95), mean: lat.reduce((a, b) => a + b, 0) / lat.length, batchPerSec });
  await p.dispose();
}
const peer = rows[0]!;
console.log(`${prompts.length} prompts from ${values.data} (${values.split}), threads ${values.threads}\n`);
console.log("| model | single p50 ms | p95 ms | mean ms | p50 / first | batch prompts/s |");
console.log("|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(`| ${r.model} | ${r.p50.toFixed(2)} | ${r.p95.toFixed(2)} | ${r.mean.toFixed(2)} | ${(r.p50 / peer.p50).toFixed(2)} | ${Math.round(r.batchPerSec)} |`);
}
