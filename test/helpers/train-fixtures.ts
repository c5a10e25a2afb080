/** Synthetic tokenized data and loop hooks for training-loop tests (no tokenizer, no engine). */
import { join } from "node:path";
import { uniformBuckets, type BucketScheme } from "../../src/data/buckets.js";
import { writeJsonAtomic } from "../../src/util/atomic.js";
import { createRng } from "../../src/util/rng.js";
import type { Example } from "../../src/train/batching.js";
import type { TrainHooks, TrainingData } from "../../src/train/loop.js";
import { DEFAULTS, type TrainOptions } from "../../src/train/options.js";
import { writeSafetensors } from "../../src/model/safetensors.js";
import { BowModel } from "./bow-model.js";

export const VOCAB = 64;
export const SCHEME: BucketScheme = uniformBuckets(64, 4);

/**
 * Prompts are [CLS] noise… signal noise… [SEP]; the signal token (10 + bucket) decides the answer length,
 * unless `labelNoise` replaces the label with a random one (a split nothing can be learned from).
 */
export function synthExamples(n: number, seed: string, labelNoise = 0): Example[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => {
    let bucket = rng.int(4);
    const len = 2 + rng.int(14);
    const ids = [1];
    const at = rng.int(len);
    for (let j = 0; j < len; j++) ids.push(j === at ? 10 + bucket : 20 + rng.int(VOCAB - 20));
    ids.push(2);
    if (rng.next() < labelNoise) bucket = rng.int(4);
    return { ids: Int32Array.from(ids), bucket, outputTokens: bucket * 16 + rng.int(16) };
  });
}

export function synthData(nTrain = 200, nVal = 60, valNoise = 0): TrainingData {
  return { train: synthExamples(nTrain, "train"), val: synthExamples(nVal, "val", valNoise), scheme: SCHEME, padId: 0 };
}

export function testOptions(out: string, over: Partial<TrainOptions> = {}): TrainOptions {
  return { ...DEFAULTS, data: "synthetic", out, epochs: 3, lr: 0.05, batchSize: 16, checkpointMinutes: 0, patience: 0, ...over };
}

export function outputsFor(o: TrainOptions): number {
  return o.head === "classification" ? 4 : o.head === "regression" ? 1 : o.quantiles.length;
}

/** Hooks with a BowModel; `models` collects every model created (the last one is the live model). */
export function bowHooks(o: TrainOptions, extra: Partial<TrainHooks> = {}): TrainHooks & { models: BowModel[] } {
  const models: BowModel[] = [];
  return {
    models,
    async createModel() {
      const m = new BowModel({ vocab: VOCAB, outputs: outputsFor(o), head: o.head, quantiles: o.quantiles, seed: o.seed, tokenDropout: 0.1 });
      models.push(m);
      return m;
    },
    async writeModel(dir, model, info) {
      await writeSafetensors(join(dir, "weights.safetensors"), model.parameters());
      await writeJsonAtomic(join(dir, "lenpred.json"), { kind: "bow-test", buckets: SCHEME, tokenizer: "test", ...info.head, epoch: info.epoch, metrics: info.metrics });
    },
    ...extra,
  };
}

/** Settings of the signal-test child process (test/helpers/train-child.ts) and its in-process reference. */
export const CHILD_OPTIONS = { keepCheckpoint: true, checkpointMinutes: 0.0005, epochs: 3 } as const;
export const childData = () => synthData(400, 40);
