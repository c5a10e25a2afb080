/**
 * `buildServer(options)`: the Fastify app behind `lenpred serve`. Routes:
 *   POST /v1/predict   {prompt} | {prompts: [...]} | OpenAI chat {model?, messages: [...]}, optional quantile
 *                      (0 < q < 1, decoded by `LengthPredictor` — the library's one quantile semantics)
 *   GET  /v1/model     predictor name and bucket scheme
 *   GET  /healthz      liveness (the process answers)
 *   GET  /readyz       readiness (model loaded and warmed up, not shutting down)
 *   GET  /metrics      Prometheus text format
 *   GET  /openapi.json OpenAPI 3 document generated from the route schemas
 * Every error is `{error: {message, field}}` with a 4xx status (503 for overload/loading/shutdown);
 * a 500 only comes from a predictor that throws. Closing the app (SIGTERM in the CLI) refuses new work
 * and answers everything already queued before it resolves.
 */
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyServerOptions } from "fastify";
import swagger from "@fastify/swagger";
import { checkPrompt, LengthPredictor } from "../predictor/length-predictor.js";
import type { Prediction, Predictor } from "../predictor/types.js";
import { LenpredError } from "../util/errors.js";
import { MicroBatcher, QueueFullError, ShuttingDownError } from "./batcher.js";
import { chatPrompt, ChatPromptError, type ChatMessage } from "./chat.js";
import { resolveLimits, type ServeLimits } from "./limits.js";
import { createMetrics, type ServeMetrics } from "./metrics.js";
import { bucketsSchema, errorSchema, predictBodySchema, predictionSchema } from "./schemas.js";

export interface ServeOptions {
  /**
   * The predictor, or a promise of it (the server answers /healthz while it loads; /readyz says 503 until then).
   * A `LengthPredictor` (e.g. `LengthPredictor.load(dir)`) is used as is; any other `Predictor` is wrapped with
   * `LengthPredictor.from`, so quantile requests always get LengthPredictor's semantics.
   */
  predictor: Predictor | Promise<Predictor>;
  /** Most prompts per predictor call (1 = no batching). Default 32. */
  maxBatch?: number;
  /** Longest a prompt waits for others to join its batch, ms. Default 2. */
  maxWaitMs?: number;
  /** Most prompts waiting; beyond it requests get 503 + Retry-After. Default 1024. */
  maxQueue?: number;
  limits?: Partial<ServeLimits>;
  /** Run one prediction before reporting ready (first ONNX runs are slow). Default false. */
  warmup?: boolean;
  /** Also export Node process metrics (CPU, memory, event loop lag) on /metrics. Default false. */
  processMetrics?: boolean;
  logger?: FastifyServerOptions["logger"];
}

export type ServeStatus = "loading" | "ready" | "failed" | "closing";

export interface ServeState {
  status: ServeStatus;
  /** Resolves when the predictor is loaded (and warmed up); rejects if loading fails. */
  ready: Promise<void>;
  predictor?: LengthPredictor;
  batcher?: MicroBatcher;
  metrics: ServeMetrics;
  limits: ServeLimits;
}

declare module "fastify" {
  interface FastifyInstance {
    lenpred: ServeState;
  }
}

interface PredictBody {
  prompt?: string;
  prompts?: string[];
  messages?: ChatMessage[];
  model?: string;
  quantile?: number;
}

export const SERVE_ROUTES: Record<string, string[]> = {
  "/v1/predict": ["POST"],
  "/v1/model": ["GET", "HEAD"],
  "/healthz": ["GET", "HEAD"],
  "/readyz": ["GET", "HEAD"],
  "/metrics": ["GET", "HEAD"],
  "/openapi.json": ["GET", "HEAD"],
};

/**
 * LengthPredictor throws LenpredError when a model cannot decode at a quantile (no probabilities, or a
 * regression head without a recorded residual spread). Anything else a predictor throws stays a 500.
 */
function isQuantileRefusal(error: unknown, quantile: number | undefined): boolean {
  return quantile !== undefined && error instanceof LenpredError;
}

export function sendError(reply: FastifyReply, status: number, message: string, field: string | null = null): FastifyReply {
  return reply.code(status).type("application/json; charset=utf-8").send({ error: { message, field } });
}

/** "/messages/0/content" + missing "role" → "messages[0].content.role"; "" → "body". */
export function fieldFromPointer(pointer: string, extra?: string): string {
  const parts = pointer.split("/").slice(1).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  if (extra !== undefined) parts.push(extra);
  let out = "";
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out === "" ? p : `.${p}`;
  return out === "" ? "body" : out;
}

function validationError(err: FastifyError, body: unknown): { message: string; field: string } {
  const v = err.validation![0]!;
  const params = v.params as Record<string, unknown>;
  const missing = typeof params.missingProperty === "string" ? params.missingProperty : undefined;
  const field = fieldFromPointer(v.instancePath, missing);
  let message = missing ? "is required" : v.message ?? "is invalid";
  if (Array.isArray(params.allowedValues)) message += ` (${params.allowedValues.join(", ")})`;
  if (field === "body" && v.keyword === "type") message = "request body must be a JSON object";
  if (field === "quantile") {
    // One message for every way q can be wrong, stating LengthPredictor's range.
    const got = (body as { quantile?: unknown } | null)?.quantile;
    return { message: `quantile must be a number in (0, 1), got ${JSON.stringify(got)}`, field };
  }
  return { message: field === "body" ? message : `${field} ${message}`, field };
}

export async function buildServer(opts: ServeOptions): Promise<FastifyInstance> {
  const limits = resolveLimits(opts.limits);
  const maxBatch = opts.maxBatch ?? 32;
  const maxWaitMs = opts.maxWaitMs ?? 2;
  const maxQueue = opts.maxQueue ?? 1024;
  if (maxQueue < limits.maxPrompts) throw new RangeError(`maxQueue (${maxQueue}) must be >= maxPrompts (${limits.maxPrompts}) or big requests could never be admitted`);

  const app = Fastify({
    logger: opts.logger ?? false,
    // Per-request log lines would dominate a load test; metrics count requests instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: limits.bodyBytes,
    return503OnClosing: true,
    forceCloseConnections: "idle",
    // Types are never coerced: a number is not a prompt. Unknown OpenAI fields are kept (and ignored).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, allowUnionTypes: true } },
    // Drop "__proto__"/"constructor.prototype" keys instead of failing with a misleading "not valid JSON".
    onProtoPoisoning: "remove",
    onConstructorPoisoning: "remove",
  });
  // Only JSON bodies: anything else is 415, not a string that fails validation with a confusing message.
  app.removeContentTypeParser("text/plain");

  let batcher: MicroBatcher | undefined;
  const metrics = createMetrics({ queueDepth: () => batcher?.depth ?? 0, maxBatch, defaultMetrics: opts.processMetrics });
  const state: ServeState = { status: "loading", ready: Promise.resolve(), metrics, limits };
  state.ready = (async () => {
    try {
      const loaded = await opts.predictor;
      const predictor = loaded instanceof LengthPredictor ? loaded : LengthPredictor.from(loaded);
      batcher = new MicroBatcher(predictor, {
        maxBatch, maxWaitMs, maxQueue,
        onBatch(size, seconds, ok, { quantile, error }) {
          metrics.batchSize.observe(size);
          metrics.batchSeconds.observe(seconds);
          if (ok) metrics.prompts.inc(size);
          // A model without a quantile mode refusing q is the client's 400, not a failed batch.
          else if (!isQuantileRefusal(error, quantile)) metrics.batchFailures.inc();
        },
      });
      if (opts.warmup) await predictor.predictBatch(["Warm-up prompt: how long will the answer be?"]);
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

  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "lenpred serve",
        version: "1",
        description: "Predicts how many tokens an LLM will answer with, from the prompt alone, for schedulers that reserve KV cache.",
      },
    },
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
  });
  app.addHook("onClose", async () => {
    await batcher?.close();
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.validation && err.validation.length > 0) {
      const { message, field } = validationError(err, req.body);
      return sendError(reply, 400, message, field);
    }
    const status = err.statusCode ?? 500;
    if (err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") return sendError(reply, 415, "content-type must be application/json");
    if (status >= 400 && status < 500) return sendError(reply, status, err.message);
    req.log.error({ err }, "request failed");
    return sendError(reply, 500, "internal error while predicting");
  });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split("?")[0]!;
    const allowed = SERVE_ROUTES[path];
    if (allowed) {
      reply.header("allow", allowed.join(", "));
      return sendError(reply, 405, `method ${req.method} not allowed on ${path} (use ${allowed.join(" or ")})`);
    }
    return sendError(reply, 404, `no route ${req.method} ${path}`);
  });

  const errorResponses = { 400: errorSchema, 413: errorSchema, 415: errorSchema, 503: errorSchema };

  app.post("/v1/predict", {
    schema: {
      summary: "Predict output lengths",
      body: predictBodySchema(limits),
      response: {
        200: {
          description: "One prediction for `prompt`/`messages`; `{predictions}` for `prompts`.",
          anyOf: [predictionSchema, { type: "object", required: ["predictions"], properties: { predictions: { type: "array", items: predictionSchema } } }],
        },
        ...errorResponses,
      },
    },
  }, async (req, reply) => {
    const body = req.body as PredictBody;
    const given = (["prompt", "prompts", "messages"] as const).filter((k) => body[k] !== undefined);
    if (given.length !== 1) {
      const msg = given.length === 0 ? "give one of prompt, prompts or messages" : `give only one of prompt, prompts or messages (got ${given.join(", ")})`;
      return sendError(reply, 400, msg, given[1] ?? "prompt");
    }
    let prompts: string[];
    if (body.prompt !== undefined) prompts = [body.prompt];
    else if (body.prompts !== undefined) prompts = body.prompts;
    else {
      try {
        prompts = [chatPrompt(body.messages!, limits.maxPromptChars)];
      } catch (e) {
        if (e instanceof ChatPromptError) return sendError(reply, 400, e.message, e.field);
        throw e;
      }
    }
    try {
      prompts.forEach((p, i) => checkPrompt(p, body.prompt !== undefined ? "prompt" : body.prompts !== undefined ? `prompts[${i}]` : "messages"));
    } catch (e) {
      if (e instanceof LenpredError) return sendError(reply, 400, e.message, e.place.field ?? null);
      throw e;
    }
    if (state.status !== "ready" || !batcher) {
      const reason = state.status === "closing" ? "shutting_down" : "loading";
      metrics.rejected.inc({ reason });
      reply.header("retry-after", "1");
      return sendError(reply, 503, state.status === "failed" ? "model failed to load" : reason === "loading" ? "model is loading" : "server is shutting down");
    }
    let preds: Prediction[];
    try {
      preds = await batcher.submit(prompts, body.quantile);
    } catch (e) {
      if (isQuantileRefusal(e, body.quantile)) return sendError(reply, 400, `${(e as Error).message} (model '${state.predictor!.name}')`, "quantile");
      if (e instanceof QueueFullError || e instanceof ShuttingDownError) {
        const queueFull = e instanceof QueueFullError;
        metrics.rejected.inc({ reason: queueFull ? "queue_full" : "shutting_down" });
        reply.header("retry-after", String(queueFull ? e.retryAfterSeconds : 1));
        return sendError(reply, 503, e.message);
      }
      throw e;
    }
    return body.prompts !== undefined ? { predictions: preds } : preds[0];
  });

  app.get("/v1/model", {
    schema: {
      summary: "The predictor being served",
      response: {
        200: { type: "object", properties: { name: { type: "string" }, buckets: bucketsSchema, maxBatch: { type: "integer" }, maxWaitMs: { type: "number" }, maxQueue: { type: "integer" }, limits: { type: "object", additionalProperties: { type: "integer" } } } },
        503: errorSchema,
      },
    },
  }, async (_req, reply) => {
    if (!state.predictor) return sendError(reply, 503, "model is loading");
    return { name: state.predictor.name, buckets: state.predictor.buckets, maxBatch, maxWaitMs, maxQueue, limits };
  });

  app.get("/healthz", {
    schema: { summary: "Liveness", response: { 200: { type: "object", properties: { status: { type: "string" } } } } },
  }, async () => ({ status: "ok" }));

  app.get("/readyz", {
    schema: {
      summary: "Readiness: 200 once the model is loaded, 503 while loading, after a failed load and while shutting down",
      response: { "2xx": { type: "object", properties: { status: { type: "string" } } }, 503: { type: "object", properties: { status: { type: "string" } } } },
    },
  }, async (_req, reply) => {
    reply.code(state.status === "ready" ? 200 : 503);
    return { status: state.status };
  });

  app.get("/metrics", { schema: { summary: "Prometheus metrics", produces: ["text/plain"] } }, async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  return app;
}
