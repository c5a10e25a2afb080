/** `lenpred baseline`: train a baseline predictor on a prepared train split, predict a split, optionally save it. */
import type { Command } from "commander";
import { DEFAULT_FEATURES } from "../baselines/ngram/features.js";
import { DEFAULT_TRAIN, type NgramTrainOptions, type PointEstimate } from "../baselines/ngram/model.js";

const D = DEFAULT_TRAIN;

interface BaselineOpts {
  kind: string;
  data: string;
  split: string;
  trainSplit: string;
  out?: string;
  save?: string;
  probabilities: boolean;
  epochs: string;
  lr: string;
  l2: string;
  hashBits: string;
  bigrams: boolean;
  lineStartWords: string;
  charNgrams: string;
  lengthFeatures: boolean;
  huberDelta: string;
  point: string;
  hidden: string;
  seed: string;
  init?: string;
  excludeIds?: string;
}

export function register(program: Command): void {
  program
    .command("baseline")
    .description("train a baseline (majority | median | linear | ngram) on the train split and write predictions for a split")
    .requiredOption("--kind <kind>", "majority (most frequent bucket), median (constant median length), linear (OLS on prompt word count), ngram (hashed n-gram softmax + log-length regression)")
    .requiredOption("--data <dir>", "prepared data directory (from `lenpred prepare`)")
    .option("--split <name>", "split to predict", "val")
    .option("--train-split <name>", "split to fit on", "train")
    .option("--out <file>", "predictions JSONL to write (input of `lenpred eval`)")
    .option("--save <dir>", "also save the model directory (lenpred.json [+ weights]); `loadPredictor` opens it")
    .option("--no-probabilities", "leave bucket probabilities out of the predictions file")
    .option("--epochs <n>", "ngram: passes over the training data", String(D.epochs))
    .option("--lr <x>", "ngram: AdaGrad learning rate", String(D.lr))
    .option("--l2 <x>", "ngram: L2 penalty", String(D.l2))
    .option("--hash-bits <n>", "ngram: log2 of the hashed feature space", String(DEFAULT_FEATURES.hashBits))
    .option("--no-bigrams", "ngram: word unigrams only")
    .option("--line-start-words <n>", "ngram: position-tagged features for the first N words of each line (0 = off)", String(DEFAULT_FEATURES.lineStartWords))
    .option("--char-ngrams <list>", "ngram: character n-gram sizes inside words, e.g. 3,4 (empty = off)", "")
    .option("--no-length-features", "ngram: drop the prompt-length features")
    .option("--huber-delta <x>", "ngram: Huber delta of the log-length regression (small = median regression)", String(D.huberDelta))
    .option("--point <how>", "ngram: expectedTokens from regression | mean | median (of the bucket distribution)", D.point)
    .option("--hidden <n>", "ngram: width of a ReLU hidden layer between the hashed features and the heads (0 = linear)", String(D.hidden))
    .option("--init <model dir>", "ngram: warm-start from a saved ngram model (its features and hidden width are used), e.g. one trained on Alpaca reference lengths before fitting Vicuna lengths")
    .option("--exclude-ids <file.jsonl>", "drop training records whose id occurs in this JSONL (e.g. another prepared dir's val.jsonl, to keep it held out)")
    .option("--seed <n>", "ngram: shuffling and initialisation seed", String(D.seed))
    .addHelpText("after", `
Every baseline is a Predictor with upperBound = edges[bucket]. Example (see docs/baselines.md):
  lenpred baseline --kind ngram --data /tmp/alpaca-s3 --split val --save models/ngram --out ngram.val.jsonl
  lenpred eval --data /tmp/alpaca-s3 --split val --preds ngram.val.jsonl`)
    .action(async (opts: BaselineOpts) => {
      const { LenpredError } = await import("../util/errors.js");
      if (!opts.out && !opts.save) throw new LenpredError("nothing to do: give --out <preds.jsonl> and/or --save <model dir>");
      const { readPreparedSplit, checkSplit } = await import("../data/prepared-dir.js");
      const { trainBaseline, BASELINE_KINDS } = await import("../baselines/index.js");
      if (!(BASELINE_KINDS as readonly string[]).includes(opts.kind)) throw new LenpredError(`unknown --kind '${opts.kind}' (expected one of ${BASELINE_KINDS.join(", ")})`);
      checkSplit(opts.split);
      const train = await readPreparedSplit(opts.data, opts.trainSplit);
      if (opts.excludeIds) {
        const { readIdSet } = await import("../baselines/split-predictions.js");
        const ids = await readIdSet(opts.excludeIds);
        const before = train.records.length;
        train.records = train.records.filter((r) => !ids.has(String(r.id)));
        process.stderr.write(`excluded ${before - train.records.length} training records whose id is in ${opts.excludeIds}\n`);
        if (train.records.length === 0) throw new LenpredError(`no training records left after --exclude-ids`, { file: opts.excludeIds });
      }
      if (opts.init && opts.kind !== "ngram") throw new LenpredError("--init only applies to --kind ngram");
      const ngram = opts.kind === "ngram" ? await ngramOptions(opts) : undefined;
      const { SingleBar, Presets } = await import("cli-progress");
      const started = Date.now();
      let bar: InstanceType<typeof SingleBar> | undefined;
      const predictor = await trainBaseline(opts.kind, train.records, train.scheme, ngram, {
        onFeaturized: () => {
          bar = new SingleBar({ format: "training ngram |{bar}| {percentage}% {value}/{total} steps, epoch {epoch}", hideCursor: true }, Presets.shades_classic);
          bar.start(ngram!.epochs * train.records.length, 0, { epoch: 1 });
        },
        onStep: (done) => bar?.update(done, { epoch: Math.min(ngram!.epochs, 1 + Math.floor(done / train.records.length)) }),
        onEpoch: (e) => {
          if (e.epoch === ngram!.epochs) bar?.stop();
          process.stderr.write(`  epoch ${e.epoch}: train cross-entropy ${e.xent.toFixed(4)}, train |log-length error| ${e.logMae.toFixed(4)}\n`);
        },
      });
      process.stderr.write(`trained ${opts.kind} on ${train.records.length} records of ${train.file} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      if (opts.save) {
        await predictor.save(opts.save, { trainedOn: { data: opts.data, split: opts.trainSplit, records: train.records.length, label: train.scheme.label } });
        process.stderr.write(`saved model directory ${opts.save}\n`);
      }
      if (opts.out) {
        const { writeSplitPredictions } = await import("../baselines/split-predictions.js");
        const target = opts.split === opts.trainSplit ? train : await readPreparedSplit(opts.data, opts.split);
        await writeSplitPredictions(predictor, target.records, opts.out, { probabilities: opts.probabilities });
        process.stderr.write(`wrote ${target.records.length} predictions for ${target.file} to ${opts.out}\n`);
      }
    });
}

async function ngramOptions(o: BaselineOpts): Promise<NgramTrainOptions> {
  const { LenpredError } = await import("../util/errors.js");
  const { POINT_ESTIMATES, NgramPredictor } = await import("../baselines/ngram/model.js");
  const { parseNumberOption } = await import("../util/number-option.js");
  const num = (flag: string, v: string, int = false, min = 0) => parseNumberOption(flag, v, { int, min });
  const hashBits = num("--hash-bits", o.hashBits, true, 8);
  if (hashBits > 24) throw new LenpredError(`--hash-bits must be at most 24, got ${hashBits}`);
  const charNgrams = o.charNgrams.trim() === "" ? [] : o.charNgrams.split(",").map((s) => num("--char-ngrams", s, true, 2));
  if (charNgrams.some((n) => n > 6)) throw new LenpredError("--char-ngrams sizes must be in 2..6");
  if (Number(o.hidden) > 1024) throw new LenpredError(`--hidden must be at most 1024, got ${o.hidden}`);
  if (!(POINT_ESTIMATES as readonly string[]).includes(o.point)) throw new LenpredError(`--point must be one of ${POINT_ESTIMATES.join(", ")}, got '${o.point}'`);
  const opts: NgramTrainOptions = {
    features: { ...DEFAULT_FEATURES, hashBits, bigrams: o.bigrams, lineStartWords: num("--line-start-words", o.lineStartWords, true), charNgrams, lengthFeatures: o.lengthFeatures },
    epochs: num("--epochs", o.epochs, true, 1),
    lr: num("--lr", o.lr),
    l2: num("--l2", o.l2),
    huberDelta: num("--huber-delta", o.huberDelta, false, 1e-6),
    point: o.point as PointEstimate,
    hidden: num("--hidden", o.hidden, true),
    seed: num("--seed", o.seed, true),
  };
  if (o.init) {
    const { loadPredictor } = await import("../predictor/load.js");
    const p = await loadPredictor(o.init);
    if (!(p instanceof NgramPredictor)) throw new LenpredError(`--init needs an ngram model directory, got kind '${p.name}'`, { file: o.init });
    // The hashed features and layer sizes must be the init model's for its weights to mean anything.
    Object.assign(opts, { init: p, features: p.features, hidden: p.params.hidden });
  }
  return opts;
}
