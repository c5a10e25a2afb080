/**
 * Moved to model/prediction.ts (below model/decode.ts and baselines/, which need it). This re-export keeps
 * serve/, metrics/ and simulate/ compiling until they import from there.
 */
export type { Prediction, PredictionRecord, Predictor, PredictorLoadOptions } from "../model/prediction.js";
