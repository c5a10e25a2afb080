/** Baseline registry: train by kind from a prepared train split, and open saved baseline directories. */
import type { PreparedRecord, PreparedScheme } from "../data/records.js";
import type { ModelMeta } from "../predictor/load.js";
import type { Predictor } from "../predictor/types.js";
import { LenpredError } from "../util/errors.js";
import { ConstantPredictor, trainMajority, trainMedian } from "./constant.js";
import { LinearPredictor, trainLinear } from "./linear.js";
import type { EpochInfo, NgramTrainOptions } from "./ngram/model.js";

export const BASELINE_KINDS = ["majority", "median", "linear", "ngram"] as const;
export type BaselineKind = (typeof BASELINE_KINDS)[number];

export interface SavablePredictor extends Predictor {
  save(dir: string, extra?: Record<string, unknown>): Promise<void>;
}

export async function trainBaseline(
  kind: string,
  train: readonly PreparedRecord[],
  scheme: PreparedScheme,
  ngram?: NgramTrainOptions,
  hooks?: { onFeaturized?: () => void; onEpoch?: (e: EpochInfo) => void; onStep?: (done: number) => void },
): Promise<SavablePredictor> {
  switch (kind) {
    case "majority": return trainMajority(train, scheme);
    case "median": return trainMedian(train, scheme);
    case "linear": return trainLinear(train, scheme);
    case "ngram": {
      const m = await import("./ngram/model.js");
      const { DEFAULT_FEATURES } = await import("./ngram/features.js");
      return m.trainNgram(train, scheme, ngram ?? { ...m.DEFAULT_TRAIN, features: DEFAULT_FEATURES }, hooks);
    }
    default:
      throw new LenpredError(`unknown baseline kind '${kind}' (expected one of ${BASELINE_KINDS.join(", ")})`);
  }
}

/** Used by loadPredictor for the baseline kinds. */
export async function loadBaseline(meta: ModelMeta, dir: string): Promise<Predictor> {
  switch (meta.kind) {
    case "majority":
    case "median":
      return ConstantPredictor.fromMeta(meta, dir);
    case "linear":
      return LinearPredictor.fromMeta(meta, dir);
    case "ngram":
      return (await import("./ngram/model.js")).NgramPredictor.load(meta, dir);
    default:
      throw new LenpredError(`not a baseline kind '${meta.kind}'`);
  }
}
