/**
 * What every route plugin (src/serve/routes/*) gets: the server's state, limits, metrics and settings.
 * A route is a Fastify plugin `(app, ctx) => ...`; adding an endpoint is a new file in routes/ plus one
 * line in routes/index.ts (405 handling and OpenAPI follow from the route's own definition). A route answers
 * errors by throwing: `HttpError` for its own decisions, domain errors as they are; errors.ts's `errorHandler`
 * is the one place that turns errors into statuses and bodies.
 */
import type { OnlineService } from "../online/service.js";
import type { MicroBatcher } from "./batcher.js";
import type { ServeLimits } from "./limits.js";
import type { ServeMetrics } from "./metrics.js";
import type { ServeOnlineOptions } from "./online.js";
import type { BasePredictor } from "./worker-predictor.js";

export type ServeStatus = "loading" | "ready" | "failed" | "closing";

export interface ServeState {
  status: ServeStatus;
  /** Resolves when the predictor is loaded (and warmed up); rejects if loading fails. */
  ready: Promise<void>;
  /** The base predictor served (in-process `LengthPredictor` or a `WorkerPredictor`), once loaded. */
  predictor?: BasePredictor;
  batcher?: MicroBatcher;
  /** Online learning (POST /v1/observe, per-model calibration of predictions), when the server mounts it. */
  online?: OnlineService;
  metrics: ServeMetrics;
  limits: ServeLimits;
  /**
   * Resolves when the server can no longer serve and should be restarted: the predictor worker died in service.
   * `lenpred serve` then drains and exits 1, for its supervisor to restart it (acknowledged observations are in
   * the state dir). Never rejects.
   */
  fatal: Promise<Error>;
  /** The admin listener (`adminPort`), when started. */
  admin?: { readonly port: number; beat(): void; close(): Promise<void> };
}

export interface ServeSettings {
  maxBatch: number;
  maxWaitMs: number;
  maxQueue: number;
  maxQueueMs: number;
}

export interface ServeContext {
  state: ServeState;
  settings: ServeSettings;
  /** Online-learning settings (absent: no /v1/observe, predictions are the base's). */
  online?: ServeOnlineOptions;
}
