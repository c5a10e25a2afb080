/**
 * Cost of the counter-based dropout (engine/random.ts) in a DistilBERT training step, against ORT's Dropout
 * op and against no dropout, in one process with the variants interleaved step by step (so they share the
 * machine's load). Same graph as DistilBertModel's training graph (src/model/distilbert-forward.ts), classification head.
 *
 * Usage: npx tsx bench/dropout-step.ts [--preset tiny|base] [--batch 32] [--seq 40] [--runs 4] [--variants keyed,ort,none] [--profile]
 * Prints one JSON line: mean and median step seconds per variant (first step of each dropped as warm-up) and
 * the ratios of the first variant to the others; --profile also prints ORT kernel time per op type (stderr).
 */
import { printOrtProfile } from "./ort-profile.js";
import { Graph } from "../src/engine/graph.js";
import * as op from "../src/engine/ops.js";
import { Trainer } from "../src/engine/optim.js";
import { stepSeed } from "../src/engine/random.js";
import { i64 } from "../src/engine/session.js";
import { PRESETS, type DistilBertConfig } from "../src/model/config.js";
import { buildForward } from "../src/model/distilbert-forward.js";
import { initParams, paramSpecs } from "../src/model/params.js";
import { createRng } from "../src/util/rng.js";

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : dflt;
};
const preset = arg("preset", "tiny");
const BATCH = Number(arg("batch", "32"));
const SEQ = Number(arg("seq", "40"));
const RUNS = Number(arg("runs", "4"));
const VARIANTS = arg("variants", "keyed,ort,none").split(",") as ("keyed" | "ort" | "none")[];
const config: DistilBertConfig = { ...PRESETS[preset]!, num_labels: 8 };

async function makeTrainer(v: "keyed" | "ort" | "none") {
  const c = v === "none" ? { ...config, dropout: 0, attention_dropout: 0, seq_classif_dropout: 0 } : config;
  const g = new Graph(`bench_${v}`);
  const ids = g.input("input_ids", "int64", ["batch", "seq"]);
  const mask = g.input("attention_mask", "int64", ["batch", "seq"]);
  const params = paramSpecs(c).map((s) => g.input(s.name, "float32", s.shape));
  const byName = new Map(params.map((p) => [p.name, p]));
  const key = g.input("dropout_seed", "int64", []);
  const { logits } = buildForward(g, c, (n) => byName.get(n)!, ids, mask, { training: true, ...(v === "keyed" ? { dropoutKey: key } : { dropoutSeed: 0 }) });
  const loss = op.softmaxCrossEntropy(logits, g.input("labels", "int64", ["batch"]));
  const profilePrefix = argv.includes("--profile") ? `/tmp/lenpred-dropout-${v}` : undefined;
  return Trainer.create({ graph: g, loss, params, initial: initParams(c, 0), adamw: {}, mode: "split", session: { profilePrefix } });
}

const rng = createRng(1);
const n = BATCH * SEQ;
const feedsAt = (step: number) => ({
  input_ids: i64(Array.from({ length: n }, () => 1000 + Math.floor(rng.next() * 20000)), [BATCH, SEQ]),
  attention_mask: i64(new Array<number>(n).fill(1), [BATCH, SEQ]),
  labels: i64(Array.from({ length: BATCH }, () => Math.floor(rng.next() * 8)), [BATCH]),
  dropout_seed: i64([stepSeed(0, step)], []),
});

const trainers = await Promise.all(VARIANTS.map(makeTrainer));
const times: number[][] = VARIANTS.map(() => []);
for (let r = 0; r <= RUNS; r++) {
  const feeds = feedsAt(r);
  // Alternate the order (ABBA) so neither variant always runs right after the other.
  const order = VARIANTS.map((_, i) => i);
  if (r % 2) order.reverse();
  for (const i of order) {
    const t0 = performance.now();
    await trainers[i]!.step(feeds, 1e-5);
    if (r > 0) times[i]!.push((performance.now() - t0) / 1000);
  }
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const res: Record<string, unknown> = { preset, batch: BATCH, seq: SEQ, runs: RUNS };
VARIANTS.forEach((v, i) => {
  res[`${v}_mean_s`] = Number(mean(times[i]!).toFixed(4));
  res[`${v}_median_s`] = Number(median(times[i]!).toFixed(4));
});
for (const v of VARIANTS.slice(1)) {
  const j = VARIANTS.indexOf(v);
  res[`ratio_mean_${VARIANTS[0]}_vs_${v}`] = Number((mean(times[0]!) / mean(times[j]!)).toFixed(3));
  res[`ratio_median_${VARIANTS[0]}_vs_${v}`] = Number((median(times[0]!) / median(times[j]!)).toFixed(3));
}
console.log(JSON.stringify(res));
for (const [i, t] of trainers.entries()) {
  if (argv.includes("--profile")) {
    t.session.endProfiling();
    printOrtProfile(`lenpred-dropout-${VARIANTS[i]!}_`, VARIANTS[i]!, 16);
  }
  await t.dispose();
}

