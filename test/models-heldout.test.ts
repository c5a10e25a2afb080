/**
 * The committed alpaca-s3 model against its card: rebuild the first records of the held-out test split straight
 * from ../shared (same seeded split as `lenpred prepare --test-fraction 0.1`, labels counted with the bundled
 * bert-base-uncased), predict them, and check the metrics equal the slice values recorded in models/alpaca-s3/heldout.json and agree with
 * the full-split values the model card reports within sampling error, and that the MAE target (≥ 25 % below constant-median) holds
 * on the slice too. Skipped when ../shared is absent.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bucketOf } from "../src/data/buckets.js";
import { assignSplits } from "../src/data/split.js";
import { renderTemplate } from "../src/data/sources.js";
import { LengthPredictor } from "../src/predictor/length-predictor.js";
import { loadTokenizer } from "../src/tokenizers/index.js";
import { sharedDataFile } from "../src/util/paths.js";

const alpaca = sharedDataFile("alpaca/alpaca_data.json");
const modelDir = join(import.meta.dirname, "..", "models", "alpaca-s3");
const SLICE = 800;

interface Heldout {
  split: { valFraction: number; testFraction: number; seed: number; template: string };
  n: number;
  metrics: { mae: number; bucketAccuracy: number };
  /** The same metrics on the first `first` test records, as computed when the card was written. */
  slice: { first: number; mae: number; bucketAccuracy: number };
  baselines: { median: { expectedTokens: number; mae: number } };
}

describe.skipIf(!alpaca)("models/alpaca-s3 on a slice of its held-out test split (needs ../shared)", () => {
  it(`reproduces the card's test MAE and accuracy within sampling error on the first ${SLICE} test records`, async () => {
    const card = JSON.parse(readFileSync(join(modelDir, "heldout.json"), "utf8")) as Heldout;
    const records = JSON.parse(readFileSync(alpaca!, "utf8")) as { instruction: string; input?: string; output: string }[];
    const codes = assignSplits(records.length, { val: card.split.valFraction, test: card.split.testFraction }, card.split.seed);
    const test = records.filter((_, i) => codes[i] === 2).slice(0, SLICE);
    expect(test).toHaveLength(SLICE);
    const tok = await loadTokenizer("bert-base-uncased");
    const actual = test.map((r) => tok.count(r.output));
    const p = await LengthPredictor.load(modelDir);
    let preds;
    try {
      preds = await p.predictBatch(test.map((r) => renderTemplate(card.split.template, r.instruction, r.input ?? "")));
    } finally {
      await p.dispose();
    }
    expect(card.slice.first).toBe(SLICE);
    const absErr = preds.map((q, i) => Math.abs(q.expectedTokens - actual[i]!));
    const mae = absErr.reduce((a, b) => a + b, 0) / SLICE;
    const sdErr = Math.sqrt(absErr.reduce((s, e) => s + (e - mae) ** 2, 0) / (SLICE - 1));
    // Exactly what the card's evaluation gave on these records (the same labels, prompts and model)…
    expect(mae).toBeCloseTo(card.slice.mae, 1);
    // …and the slice is part of the card's test split: its MAE is within a few standard errors of the full-split value.
    expect(Math.abs(mae - card.metrics.mae)).toBeLessThan(4 * sdErr / Math.sqrt(SLICE));
    const acc = preds.filter((q, i) => q.bucket === bucketOf(p.buckets, actual[i]!)).length / SLICE;
    const accSe = Math.sqrt(card.metrics.bucketAccuracy * (1 - card.metrics.bucketAccuracy) / SLICE);
    expect(acc).toBeCloseTo(card.slice.bucketAccuracy, 2);
    expect(Math.abs(acc - card.metrics.bucketAccuracy)).toBeLessThan(4 * accSe);
    // Target: MAE at least 25 % below the constant-median predictor, here on the same slice.
    const medianMae = actual.reduce((s, y) => s + Math.abs(card.baselines.median.expectedTokens - y), 0) / SLICE;
    expect(mae).toBeLessThan(0.75 * medianMae);
  }, 60_000);
});
