/**
 * The model-selection table: for each model directory, quality on a prepared split (shared metrics
 * library), single-prompt latency measured in this run (and as a ratio to the first model, the peer),
 * directory size, parameter count, and training time/epochs from training.json. Feed it the DistilBERT
 * sizes trained by `lenpred train` and the best classical baseline (`lenpred baseline --save`).
 *
 *   npx tsx bench/model-table.ts --data /tmp/alpaca-s3 --split test [--latency-n 300] BASELINE_DIR MODEL_DIR…
 */
import { readdirSync, readFileSync, statSync, existsSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { computeMetrics } from "../src/metrics/metrics.js";
import { readPreparedSplit } from "../src/data/prepared-dir.js";
import { parseConfig } from "../src/model/config.js";
import { countParams } from "../src/model/params.js";
import { LengthPredictor } from "../src/predictor/length-predictor.js";
import { readModelMeta } from "../src/model-dir/index.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { data: { type: "string" }, split: { type: "string", default: "test" }, "latency-n": { type: "string", default: "300" }, json: { type: "boolean" } },
});
if (!values.data || positionals.length === 0) {
  console.error("usage: npx tsx bench/model-table.ts --data PREPARED_DIR [--split test] [--latency-n 300] MODEL_DIR...");
  process.exit(2);
}
const split = await readPreparedSplit(values.data, values.split!);
const prompts = split.records.map((r) => r.prompt);
const latN = Number(values["latency-n"]);

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return n;
}

interface Row { model: string; kind: string; params?: number; mb: number; trainMin?: number; epochs?: number; acc: number; mae: number; acc50: number; acc100: number; under: number; p50: number; predictS: number }
const rows: Row[] = [];
for (const dir of positionals) {
  const meta = await readModelMeta(dir);
  let params: number | undefined;
  let kind = meta.kind;
  if (meta.kind === "distilbert") {
    const c = parseConfig(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")));
    params = countParams(c);
    kind = `distilbert ${c.n_layers}×${c.dim} ${String(meta.head ?? "classification")}`;
  }
  let trainMin: number | undefined, epochs: number | undefined;
  if (existsSync(join(dir, "training.json"))) {
    const t = JSON.parse(readFileSync(join(dir, "training.json"), "utf8")) as { elapsedSeconds: number; epochsDone: number };
    trainMin = t.elapsedSeconds / 60;
    epochs = t.epochsDone;
  }
  const p = await LengthPredictor.load(dir);
  const t0 = performance.now();
  const preds = await p.predictBatch(prompts);
  const predictS = (performance.now() - t0) / 1000;
  const m = computeMetrics(split.scheme.buckets, split.records.map((r) => r.output_tokens), split.records.map((r) => r.output_length_bucket), preds);
  for (const pr of prompts.slice(0, 20)) await p.predict(pr);
  const lat: number[] = [];
  for (const pr of prompts.slice(0, latN)) {
    const t = performance.now();
    await p.predict(pr);
    lat.push(performance.now() - t);
  }
  await p.dispose();
  lat.sort((a, b) => a - b);
  rows.push({ model: dir, kind, params, mb: dirBytes(dir) / 2 ** 20, trainMin, epochs, acc: m.bucketAccuracy, mae: m.mae, acc50: m.acc50, acc100: m.acc100, under: m.underAllocationRate, p50: lat[Math.floor(lat.length / 2)]!, predictS });
}
if (values.json) {
  console.log(JSON.stringify(rows));
} else {
  const pct = (x: number) => `${(100 * x).toFixed(2)} %`;
  console.log(`${split.records.length} records of ${split.file}; latency = single prompt p50 over ${Math.min(latN, prompts.length)} prompts, ratio to the first row\n`);
  console.log("| model | kind | params | size MB | train min (epochs) | bucket acc | MAE = Error | Acc-50 | Acc-100 | under-alloc | p50 ms | × first |");
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(`| ${r.model} | ${r.kind} | ${r.params ? (r.params / 1e6).toFixed(2) + " M" : "-"} | ${r.mb.toFixed(1)} | ${r.trainMin !== undefined ? `${r.trainMin.toFixed(1)} (${r.epochs})` : "-"} | ${pct(r.acc)} | ${r.mae.toFixed(1)} | ${pct(r.acc50)} | ${pct(r.acc100)} | ${pct(r.under)} | ${r.p50.toFixed(2)} | ${(r.p50 / rows[0]!.p50).toFixed(1)} |`);
  }
}
