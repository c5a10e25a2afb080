/**
 * `buildServer(options)`: the Fastify app behind `lenpred serve`. Routes (one plugin file each, src/serve/routes/):
 *   POST /v1/predict   {prompt} | {prompts: [...]} | OpenAI chat {model?, messages: [...]}, optional quantile
 *   GET  /v1/model     predictor name and bucket scheme
 *   GET  /healthz      liveness (the event loop answers)
 *   GET  /readyz       readiness (model loaded and warmed up, not shutting down)
 *   GET  /metrics      Prometheus text format
 *   GET  /openapi.json OpenAPI document generated from the route schemas
 * Every error is `{error: {message, field}}` with a 4xx status (503 + Retry-After for overload, queue-time
 * budget, loading and shutdown); a 500 only comes from a predictor that throws, for the failing prompt's
 * request only. Closing the app (SIGTERM in the CLI) refuses new work and answers everything already queued
 * before it resolves.
 *
 * The predictor pipeline: base predictor → Prediction[]. A model directory (`modelDir`, the CLI's --model)
 * runs in a worker thread (WorkerPredictor), so tokenization and inference never block the event loop; an
 * injected `predictor` runs in-process, wrapped in LengthPredictor for its quantile semantics. Anything that
 * post-processes predictions on the main thread wraps the `BasePredictor` the batcher drives.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from "fastify";
import type { Server } from "node:http";
import { basename, resolve } from "node:path";
import swagger from "@fastify/swagger";
import { LengthPredictor, type LengthPredictorOptions } from "../predictor/length-predictor.js";
import type { Predictor } from "../model/prediction.js";
import { MicroBatcher } from "./batcher.js";
import { YieldGate } from "../util/yield-gate.js";
import type { ServeContext, ServeSettings, ServeState } from "./context.js";
import { clientErrorHandler, errorHandler, sendError, sendUnavailable } from "./errors.js";
import { resolveLimits, type ServeLimits } from "./limits.js";
import { createMetrics } from "./metrics.js";
import { isQuantileRefusal } from "./quantile.js";
import { ROUTES } from "./routes/index.js";
import { observationSchema, SHARED_SCHEMAS } from "./schemas.js";
import { WorkerPredictor, type BasePredictor } from "./worker-predictor.js";
import { openOnline, type ServeOnlineOptions } from "./online.js";
import { startAdmin } from "./admin-thread.js";

export { fieldFromPointer, sendError } from "./errors.js";
export type { ServeState, ServeStatus } from "./context.js";
export type { BasePredictor } from "./worker-predictor.js";

export interface ServeOptions {
  /**
   * An in-process predictor, or a promise of it (the server answers /healthz while it loads; /readyz says 503
   * until then). A `LengthPredictor` is used as is; any other `Predictor` is wrapped with `LengthPredictor.from`,
   * so quantile requests always get LengthPredictor's semantics. Give this or `modelDir`.
   */
  predictor?: Predictor | Promise<Predictor>;
  /** A model directory to load with `LengthPredictor.load(dir, loadOptions)` in a worker thread (what the CLI does). */
  modelDir?: string;
  /** Options for loading `modelDir` (defaults: `batchSize` = maxBatch, one ONNX run per micro-batch; `maxPromptChars` = the limit). */
  loadOptions?: LengthPredictorOptions;
  /** Most prompts per predictor call (1 = no batching). Default 32. */
  maxBatch?: number;
  /** Longest a prompt waits for others to join its batch, ms. Default 2. */
  maxWaitMs?: number;
  /** Most prompts waiting; beyond it requests get 503 + Retry-After. Default 1024. */
  maxQueue?: number;
  /** Longest a prompt may wait in the queue before its request gets 503 + Retry-After, ms. Default 2000. */
  maxQueueMs?: number;
  limits?: Partial<ServeLimits>;
  /** Run one prediction before reporting ready (first ONNX runs are slow). Default false. */
  warmup?: boolean;
  /** Also export Node process metrics (CPU, memory, event loop lag) on /metrics. Default false. */
  processMetrics?: boolean;
  logger?: FastifyServerOptions["logger"];
  /**
   * Learn the deployed LLM online (docs/online.md): `POST /v1/observe`, `model` and `reserveTokens` on
   * predictions, per-model quality on /metrics. Off when absent (the CLI always mounts it).
   */
  online?: ServeOnlineOptions;
  /**
   * Start the admin listener (admin-thread.ts) on this port (0 = any free port; `app.lenpred.admin.port`):
   * /healthz, /readyz and /metrics answered from a worker thread, so probes never wait on the main event loop.
   */
  adminPort?: number;
  /** Address of the admin listener. Default 127.0.0.1. */
  adminHost?: string;
  /** The admin /healthz says 503 once the main loop's heartbeat is this old, ms. Default 10000. */
  livenessStallMs?: number;
}

export const DEFAULT_MAX_QUEUE_MS = 2000;

declare module "fastify" {
  interface FastifyInstance {
    lenpred: ServeState;
  }
}

async function loadBase(opts: ServeOptions, maxBatch: number, maxPromptChars: number): Promise<BasePredictor> {
  // The predictor enforces the same prompt limit as the request schema (one limit, not two).
  if (opts.modelDir !== undefined) {
    return WorkerPredictor.start(opts.modelDir, { batchSize: maxBatch, maxPromptChars, ...opts.loadOptions }, { features: opts.online !== undefined });
  }
  const loaded = await opts.predictor!;
  return loaded instanceof LengthPredictor ? loaded : LengthPredictor.from(loaded, { maxPromptChars });
}

export async function buildServer(opts: ServeOptions): Promise<FastifyInstance> {
  if ((opts.predictor === undefined) === (opts.modelDir === undefined)) throw new RangeError("give exactly one of predictor or modelDir");
  const limits = resolveLimits(opts.limits);
  const settings: ServeSettings = {
    maxBatch: opts.maxBatch ?? 32,
    maxWaitMs: opts.maxWaitMs ?? 2,
    maxQueue: opts.maxQueue ?? 1024,
    maxQueueMs: opts.maxQueueMs ?? DEFAULT_MAX_QUEUE_MS,
  };
  if (settings.maxQueue < limits.maxPrompts) {
    throw new RangeError(`maxQueue (${settings.maxQueue}) must be >= maxPrompts (${limits.maxPrompts}) or big requests could never be admitted`);
  }
  if (!(settings.maxQueueMs > 0)) throw new RangeError(`maxQueueMs must be > 0, got ${settings.maxQueueMs}`);

  const app: FastifyInstance = Fastify<Server>({
    logger: opts.logger ?? false,
    // Per-request log lines would dominate a load test; metrics count requests instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: limits.bodyBytes,
    // Our onRequest hook answers requests during shutdown (with Retry-After and the documented error body).
    return503OnClosing: false,
    forceCloseConnections: "idle",
    clientErrorHandler,
    // Types are never coerced: a number is not a prompt. Unknown OpenAI fields are kept (and ignored).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, allowUnionTypes: true } },
    // Drop "__proto__"/"constructor.prototype" keys instead of failing with a misleading "not valid JSON".
    onProtoPoisoning: "remove",
    onConstructorPoisoning: "remove",
  });
  // Only JSON bodies: anything else is 415, not a string that fails validation with a confusing message.
  app.removeContentTypeParser("text/plain");

  let batcher: MicroBatcher | undefined;
  let owned: BasePredictor | undefined;
  const metrics = createMetrics({ queueDepth: () => batcher?.depth ?? 0, maxBatch: settings.maxBatch, defaultMetrics: opts.processMetrics });
  let fatal!: (e: Error) => void;
  const state: ServeState = { status: "loading", ready: Promise.resolve(), metrics, limits, fatal: new Promise<Error>((r) => { fatal = r; }) };
  // Before loading starts: a busy admin port fails the build without leaving a model worker behind.
  if (opts.adminPort !== undefined) {
    state.admin = await startAdmin({
      port: opts.adminPort, host: opts.adminHost ?? "127.0.0.1", stallMs: opts.livenessStallMs, status: () => state.status,
      metrics: async () => ({ text: await metrics.registry.metrics(), contentType: metrics.registry.contentType }),
    });
  }
  state.ready = (async () => {
    try {
      const predictor = await loadBase(opts, settings.maxBatch, limits.maxPromptChars);
      if (opts.modelDir !== undefined) owned = predictor;
      if (predictor instanceof WorkerPredictor) {
        predictor.onDeath = (error) => {
          if (state.status === "closing") return;
          state.status = "failed";
          app.log.error({ err: error }, "predictor worker died: not ready any more");
          fatal(error);
        };
      }
      if (state.status === "closing") {
        await owned?.dispose?.();
        return;
      }
      // The seam: the batcher drives a BasePredictor (prompts + quantile → Prediction[]). A main-thread layer that
      // post-processes predictions (e.g. per-model calibration) wraps `predictor` here, whether or not it is a worker.
      // A background retrain (child process) is stopped while predictions are queued or running.
      const yieldGate = opts.online ? new YieldGate() : undefined;
      batcher = new MicroBatcher(predictor, {
        maxBatch: settings.maxBatch, maxWaitMs: settings.maxWaitMs, maxQueue: settings.maxQueue, maxQueueMs: settings.maxQueueMs,
        // A quantile the model cannot decode fails every prompt alike: no point retrying them one by one.
        splitOnError: (error, quantile) => !isQuantileRefusal(error, quantile),
        onBatch(size, seconds, ok, { quantile, error }) {
          metrics.batchSize.observe(size);
          metrics.batchSeconds.observe(seconds);
          if (ok) metrics.prompts.inc(size);
          // A model without a quantile mode refusing q is the client's 400, not a failed batch.
          else if (!isQuantileRefusal(error, quantile)) metrics.batchFailures.inc();
        },
        ...(yieldGate ? { onBusyChange: (busy: boolean) => yieldGate.setBusy(busy) } : {}),
      });
      if (opts.warmup) await predictor.predictBatch(["Warm-up prompt: how long will the answer be?"]);
      // Opens the state dir (its lock: a second server on it fails to start) and learns again what was stored.
      if (opts.online) {
        state.online = await openOnline(predictor, batcher, opts.online, limits, opts.modelDir, yieldGate);
        metrics.registerOnline(state.online);
      }
      metrics.registerModel({
        model: opts.modelDir !== undefined ? basename(resolve(opts.modelDir)) : predictor.name,
        kind: predictor.info?.kind ?? predictor.name,
        tokenizer: predictor.info?.tokenizer ?? "unknown",
        buckets: predictor.buckets,
      });
      state.predictor = predictor;
      state.batcher = batcher;
      if (state.status === "loading") state.status = "ready";
    } catch (e) {
      if (state.status === "loading") state.status = "failed";
      throw e;
    }
  })();
  state.ready.catch(() => undefined); // the CLI awaits it; tests may not
  app.decorate("lenpred", state);

  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
  if (opts.online) app.addSchema(observationSchema(limits));
  await app.register(swagger, {
    // Shared schemas keep their $id as their components.schemas name (Prediction, Error, ...).
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === "string" ? json.$id : `def-${i}`) },
    openapi: {
      // 3.1: its schemas are JSON Schema 2020-12, the dialect the route schemas are written in
      // (numeric exclusiveMinimum, type arrays with "null").
      openapi: "3.1.0",
      info: {
        title: "lenpred serve",
        version: "1",
        description: "Predicts how many tokens an LLM will answer with, from the prompt alone, for schedulers that reserve KV cache.",
      },
      // POST /v1/observe with --observe-token.
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    },
  });

  // Methods per path, collected from the routes themselves, for 405 + Allow.
  const allowed = new Map<string, string[]>();
  app.addHook("onRoute", (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    allowed.set(route.url, [...new Set([...(allowed.get(route.url) ?? []), ...methods])]);
  });
  const methodNotAllowed = (method: string, path: string): string[] | undefined => {
    const methods = allowed.get(path);
    return methods && !methods.includes(method) ? methods : undefined;
  };

  app.addHook("onRequest", async (req, reply) => {
    const path = req.url.split("?")[0]!;
    // Before body parsing: `DELETE /v1/predict` with an empty JSON body is a wrong method, not a bad body.
    const methods = methodNotAllowed(req.method, path);
    if (methods) {
      reply.header("allow", methods.join(", "));
      return sendError(reply, 405, `method ${req.method} not allowed on ${path} (use ${methods.join(" or ")})`);
    }
    // /readyz answers "closing" itself (a load balancer's signal); everything else gets the error body.
    if (state.status === "closing" && path !== "/readyz") {
      if (path === "/v1/predict") metrics.rejected.inc({ reason: "shutting_down" });
      return sendUnavailable(reply, "server is shutting down");
    }
  });
  app.addHook("onResponse", async (req, reply) => {
    const route = req.routeOptions.url ?? "unmatched";
    metrics.requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    metrics.latency.observe({ route }, reply.elapsedTime / 1000);
  });
  // While draining, close each connection after its response: Node closes only the connections that are
  // idle when close() starts, so a kept-alive one whose request was in flight would hold shutdown open.
  app.addHook("onSend", async (_req, reply) => {
    if (state.status === "closing") reply.header("connection", "close");
  });
  app.addHook("preClose", async () => {
    state.status = "closing";
    state.admin?.beat();
  });
  app.addHook("onClose", async () => {
    // Learn what was accepted (the learner reaches the base directly), snapshot, release the state dir's lock.
    await state.online?.close();
    await batcher?.close();
    await owned?.dispose?.();
    await state.admin?.close();
  });

  app.setErrorHandler(errorHandler(state));

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split("?")[0]!;
    return sendError(reply, 404, `no route ${req.method} ${path}`);
  });

  const ctx: ServeContext = { state, settings, ...(opts.online ? { online: opts.online } : {}) };
  for (const route of ROUTES) await app.register(route, ctx);
  return app;
}
