/** Baseline training by kind from a prepared train split (saved ones are opened through predictor/load.ts). */
import type { PreparedRecord, PreparedScheme } from "../data/records.js";
import type { Predictor } from "../model/prediction.js";
import { LenpredError } from "../util/errors.js";
import { trainMajority, trainMedian } from "./constant.js";
import { trainLinear } from "./linear.js";
import type { EpochInfo, NgramTrainOptions } from "./ngram/model.js";

export const BASELINE_KINDS = ["majority", "median", "linear", "ngram"] as const;
export type BaselineKind = (typeof BASELINE_KINDS)[number];

export interface SavablePredictor extends Predictor {
  save(dir: string, extra?: Record<string, unknown>): Promise<void>;
}

type Hooks = { onFeaturized?: () => void; onEpoch?: (e: EpochInfo) => void; onStep?: (done: number) => void };
type Trainer = (train: readonly PreparedRecord[], scheme: PreparedScheme, ngram?: NgramTrainOptions, hooks?: Hooks) => Promise<SavablePredictor>;

/** How each baseline kind trains (opening a saved one is the kind registry's job: predictor/load.ts). */
const TRAINERS: Record<BaselineKind, Trainer> = {
  majority: async (train, scheme) => trainMajority(train, scheme),
  median: async (train, scheme) => trainMedian(train, scheme),
  linear: async (train, scheme) => trainLinear(train, scheme),
  ngram: async (train, scheme, ngram, hooks) => {
    const m = await import("./ngram/model.js");
    const { DEFAULT_FEATURES } = await import("./ngram/features.js");
    return m.trainNgram(train, scheme, ngram ?? { ...m.DEFAULT_TRAIN, features: DEFAULT_FEATURES }, hooks);
  },
};

export async function trainBaseline(
  kind: string,
  train: readonly PreparedRecord[],
  scheme: PreparedScheme,
  ngram?: NgramTrainOptions,
  hooks?: Hooks,
): Promise<SavablePredictor> {
  if (!(BASELINE_KINDS as readonly string[]).includes(kind)) {
    throw new LenpredError(`unknown baseline kind '${kind}' (expected one of ${BASELINE_KINDS.join(", ")})`);
  }
  return TRAINERS[kind as BaselineKind](train, scheme, ngram, hooks);
}
