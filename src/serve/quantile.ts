import { LenpredError } from "../util/errors.js";

/**
 * LengthPredictor throws LenpredError when a model cannot decode at a quantile (no probabilities, or a
 * regression head without a recorded residual spread): the client's 400, for every prompt of the call.
 * Anything else a predictor throws stays a 500.
 */
export function isQuantileRefusal(error: unknown, quantile: number | undefined): boolean {
  return quantile !== undefined && error instanceof LenpredError;
}
