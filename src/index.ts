/** Library entry point: the typed API of lenpred. */
export * from "./data/buckets.js";
export type * from "./data/records.js";
export type * from "./predictor/types.js";
export { LenpredError } from "./util/errors.js";
export { LengthPredictor, type LengthPredictorOptions, type PredictOptions } from "./predictor/length-predictor.js";
export { loadPredictor, readModelMeta, type ModelMeta } from "./predictor/load.js";
