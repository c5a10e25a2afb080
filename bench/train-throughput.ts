/**
 * Training throughput of the real DistilBERT trainable model under the training loop's batching, for several
 * model sizes and batch sizes in one run (read the ratios; absolute numbers depend on machine load). Reports
 * real (non-padding) tokens/s and the projected minutes per epoch of the given prepared training split.
 *
 *   npx tsx bench/train-throughput.ts --data /tmp/alpaca-s3 [--steps 30] [--configs tiny,small] [--batches 16,64]
 */
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { DistilBertModel } from "../src/model/distilbert-trainable.js";
import { PRESETS } from "../src/model/config.js";
import { loadTokenizer } from "../src/tokenizers/index.js";
import { collate, lengthGroupedBatches, realTokens } from "../src/train/batching.js";
import { loadTrainingData } from "../src/train/data.js";
import { createRng } from "../src/util/rng.js";

const { values } = parseArgs({
  options: {
    data: { type: "string" }, steps: { type: "string", default: "30" },
    configs: { type: "string", default: "tiny,small" }, batches: { type: "string", default: "16,64" },
  },
});
if (!values.data) {
  console.error("usage: npx tsx bench/train-throughput.ts --data PREPARED_DIR [--steps 30] [--configs tiny,small] [--batches 16,64]");
  process.exit(2);
}
const tok = await loadTokenizer("bert-base-uncased");
const data = await loadTrainingData(values.data, tok, { maxLength: 512 });
const epochTokens = data.train.reduce((s, e) => s + e.ids.length, 0);
const steps = Number(values.steps);
console.log(`${data.train.length} training prompts, ${epochTokens} tokens per epoch; ${steps} timed steps after 3 warm-up steps\n`);
console.log("| config | batch | tokens/s | ms/step | min/epoch |");
console.log("|---|---|---|---|---|");
for (const name of values.configs!.split(",")) {
  for (const bs of values.batches!.split(",").map(Number)) {
    const config = { ...PRESETS[name]!, num_labels: data.scheme.edges.length, vocab_size: tok.vocabSize };
    const model = await DistilBertModel.create(config, { seed: 42 });
    const batches = lengthGroupedBatches(data.train.map((e) => e.ids.length), bs, createRng(42));
    const opts = { learningRate: 1e-4, weightDecay: 0, maxGradNorm: 1 };
    for (let i = 0; i < 3; i++) await model.trainStep(collate(data.train, batches[i]!, "classification", data.padId), opts);
    let tokens = 0;
    const t0 = performance.now();
    // Evenly spaced batches: each mega-batch starts with its longest prompts, so consecutive ones are biased.
    const stride = Math.max(1, Math.floor(batches.length / steps));
    for (let i = 0; i < steps; i++) {
      const b = collate(data.train, batches[(i * stride) % batches.length]!, "classification", data.padId);
      tokens += realTokens(b);
      await model.trainStep(b, opts);
    }
    const s = (performance.now() - t0) / 1000;
    await model.dispose();
    console.log(`| ${name} | ${bs} | ${Math.round(tokens / s)} | ${((1000 * s) / steps).toFixed(1)} | ${(epochTokens / (tokens / s) / 60).toFixed(1)} |`);
  }
}
