/**
 * `buildProxy(options)`: the Fastify app behind `lenpred proxy`, an OpenAI-compatible reverse proxy that puts
 * the length predictor in front of an existing LLM server (vLLM, llama.cpp server, Ollama, ...).
 *
 *   POST /v1/chat/completions, /v1/completions  predicted, queued by the admission policy (scheduler.ts), forwarded
 *                                               (streaming or not); the true length is observed afterwards
 *   GET  /healthz, /readyz, /metrics            the proxy's own (same meaning as in `lenpred serve`)
 *   anything else (e.g. GET /v1/models)         forwarded as is, byte for byte, not queued
 *
 * Headers (Authorization included) go upstream unchanged except hop-by-hop ones; they are never logged.
 * Upstream answers with a status >= 400 are passed through as they are. A client that disconnects cancels its
 * upstream request (or leaves the queue). Bodies are streamed through Transforms, so a slow client slows the
 * upstream read instead of filling memory. Errors of the proxy itself have serve's shape `{error: {message, field}}`.
 */
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from "fastify";
import { pipeline } from "node:stream";
import { Agent, errors as undiciErrors, request as undiciRequest, type Dispatcher } from "undici";
import { resolveLimits, type ServeLimits } from "../serve/limits.js";
import { clientErrorHandler, sendError, sendUnavailable, validationError } from "../serve/errors.js";
import { LenpredError } from "../util/errors.js";
import { createProxyMetrics, type ProxyMetrics } from "./metrics.js";
import type { ProxyPrediction, ProxyPredictor } from "./predictor.js";
import { chatBodySchema, completionBodySchema, parseLlmBody, type LlmRoute, type ParsedRequest } from "./request.js";
import { JsonTap, SseTap, type TapResult } from "./response.js";
import { QueueFullError, Scheduler, type Job, type PolicyName, type Ticket } from "./scheduler.js";

export interface ProxyOptions {
  /** Base URL of the OpenAI-compatible server, e.g. http://127.0.0.1:8000 (paths are appended as they come). */
  upstream: string;
  predictor: ProxyPredictor | Promise<ProxyPredictor>;
  policy?: PolicyName;
  /** Most requests in flight upstream. Default 8. */
  maxConcurrency?: number;
  /** Most requests waiting in the proxy (503 + Retry-After beyond). Default 1024. */
  maxQueue?: number;
  /** s3: KV tokens the in-flight requests may reserve in total. */
  kvBudgetTokens?: number;
  agingHalfLifeSeconds?: number;
  /** `vllm`: also send vLLM's per-request `priority` (needs `vllm serve --scheduling-policy priority`). */
  upstreamKind?: "openai" | "vllm";
  /** Set `max_tokens` to min(client's, reserveTokens): the S³ reservation becomes a hard limit. Default false. */
  capMaxTokens?: boolean;
  /** Counts prompt tokens (s3) and streamed answers without usage. Default: chunk count / characters ÷ 4. */
  countTokens?: (text: string) => number;
  /** Upstream headers and body timeout, ms. Default 600 000. */
  upstreamTimeoutMs?: number;
  limits?: Partial<ServeLimits>;
  /** Most bytes of a non-streamed response kept to read its usage (the rest still passes through). Default 8 MiB. */
  maxResponseBytes?: number;
  processMetrics?: boolean;
  logger?: FastifyServerOptions["logger"];
  /** Injected clock for the scheduler (tests). */
  now?: () => number;
}

export type ProxyStatus = "loading" | "ready" | "failed" | "closing";

export interface ProxyState {
  status: ProxyStatus;
  ready: Promise<void>;
  predictor?: ProxyPredictor;
  scheduler: Scheduler<ProxyJob>;
  metrics: ProxyMetrics;
  limits: ServeLimits;
}

export interface ProxyJob extends Job {
  route: LlmRoute;
  model?: string;
}

declare module "fastify" {
  interface FastifyInstance {
    lenpredProxy: ProxyState;
  }
}

const HOP_BY_HOP = new Set([
  "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
  "transfer-encoding", "upgrade", "host", "http2-settings",
]);

function forwardHeaders(h: Record<string, string | string[] | undefined>, drop: readonly string[] = []): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const connectionListed = String(h.connection ?? "").toLowerCase().split(",").map((s) => s.trim()).filter(Boolean);
  for (const [k, v] of Object.entries(h)) {
    const key = k.toLowerCase();
    if (v === undefined || HOP_BY_HOP.has(key) || connectionListed.includes(key) || drop.includes(key)) continue;
    out[key] = v;
  }
  return out;
}

/** What a request whose prediction failed is scheduled as. */
const FALLBACK_TOKENS = 2048;

/** Chars ÷ 4: the usual rule of thumb, when no tokenizer is configured. */
const roughCount = (text: string) => Math.ceil(text.length / 4);

export async function buildProxy(opts: ProxyOptions): Promise<FastifyInstance> {
  const limits = resolveLimits(opts.limits);
  const upstream = new URL(opts.upstream);
  if (upstream.protocol !== "http:" && upstream.protocol !== "https:") throw new RangeError(`upstream must be an http(s) URL, got ${opts.upstream}`);
  const base = upstream.href.replace(/\/+$/, "");
  const maxConcurrency = opts.maxConcurrency ?? 8;
  const scheduler = new Scheduler<ProxyJob>({
    policy: opts.policy ?? "fcfs", maxConcurrency, maxQueue: opts.maxQueue ?? 1024,
    kvBudgetTokens: opts.kvBudgetTokens, agingHalfLifeSeconds: opts.agingHalfLifeSeconds, now: opts.now,
  });
  const countTokens = opts.countTokens ?? roughCount;
  const timeout = opts.upstreamTimeoutMs ?? 600_000;
  const maxResponseBytes = opts.maxResponseBytes ?? 8 << 20;
  // One connection pool: the LLM routes never need more than maxConcurrency sockets; pass-through gets headroom.
  const agent = new Agent({ connections: maxConcurrency + 16, headersTimeout: timeout, bodyTimeout: timeout, keepAliveTimeout: 10_000 });

  const metrics = createProxyMetrics({
    queueLength: () => scheduler.queued, inFlight: () => scheduler.inFlight, reservedTokens: () => scheduler.reservedTokens,
    defaultMetrics: opts.processMetrics,
  });

  const app = Fastify({
    logger: opts.logger ?? false,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: limits.bodyBytes,
    return503OnClosing: true,
    clientErrorHandler,
    forceCloseConnections: "idle",
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, allowUnionTypes: true } },
    onProtoPoisoning: "remove",
    onConstructorPoisoning: "remove",
  });

  // Only JSON bodies on the LLM routes: anything else is 415, as in serve.
  app.removeContentTypeParser("text/plain");

  const state: ProxyState = { status: "loading", ready: Promise.resolve(), scheduler, metrics, limits };
  state.ready = (async () => {
    try {
      state.predictor = await opts.predictor;
      if (state.status === "loading") state.status = "ready";
    } catch (e) {
      if (state.status === "loading") state.status = "failed";
      throw e;
    }
  })();
  state.ready.catch(() => undefined);
  app.decorate("lenpredProxy", state);

  app.addHook("onSend", async (_req, reply) => {
    if (state.status === "closing") reply.header("connection", "close");
  });
  app.addHook("preClose", async () => {
    state.status = "closing";
  });
  // Observations still being handed to the learner when the server closes (the answer's end is seen as the
  // client reads it, just before its request counts as finished): the predictor closes (and snapshots) after them.
  const pendingObservations = new Set<Promise<void>>();
  app.addHook("onClose", async () => {
    await agent.close();
    await Promise.all(pendingObservations);
    await state.predictor?.close?.();
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.validation && err.validation.length > 0) {
      const { message, field } = validationError(err, req.body);
      return sendError(reply, 400, message, field);
    }
    if (err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") return sendError(reply, 415, "content-type must be application/json");
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) return sendError(reply, status, err.message);
    req.log.error({ err: { message: err.message, code: err.code } }, "proxy request failed");
    return sendError(reply, 500, "internal error in the proxy");
  });

  const refuse = (reply: FastifyReply, reason: "loading" | "shutting_down" | "queue_full", message: string) => {
    metrics.rejected.inc({ reason });
    return sendUnavailable(reply, message, 1);
  };

  /** Map an undici failure to the proxy's own error answer. */
  const upstreamFailure = (reply: FastifyReply, e: unknown) => {
    const timedOut = e instanceof undiciErrors.HeadersTimeoutError || e instanceof undiciErrors.BodyTimeoutError || e instanceof undiciErrors.ConnectTimeoutError;
    metrics.upstreamErrors.inc({ kind: timedOut ? "timeout" : "connect" });
    const code = (e as { code?: string }).code ?? (e as Error).message;
    return sendError(reply, timedOut ? 504 : 502, timedOut ? `upstream timed out (${code})` : `upstream unreachable (${code})`);
  };

  async function llmRoute(route: LlmRoute, req: FastifyRequest, reply: FastifyReply) {
    const body = req.body as Record<string, unknown>;
    let parsed: ParsedRequest;
    try {
      parsed = parseLlmBody(route, body, limits);
    } catch (e) {
      if (e instanceof LenpredError) return sendError(reply, 400, e.message, e.place.field ?? null);
      throw e;
    }
    if (state.status !== "ready" || !state.predictor) {
      return state.status === "closing" ? refuse(reply, "shutting_down", "proxy is shutting down")
        : refuse(reply, "loading", state.status === "failed" ? "predictor failed to load" : "predictor is loading");
    }
    const predictor = state.predictor;

    // One close listener for the whole life of the request: the client may leave while its prediction runs
    // (then it is never queued), while it is queued (it leaves the queue) or while the upstream answers (the
    // upstream request is aborted). After a complete response, close only releases the slot.
    let stage: "predicting" | "queued" | "upstream" = "predicting";
    let clientGone = false;
    let ticket: Ticket<ProxyJob> | undefined;
    let leaveQueue: (() => void) | undefined;
    let admitted = 0;
    let released = false;
    const abort = new AbortController();
    const release = () => {
      if (released || !ticket) return;
      released = true;
      scheduler.release(ticket);
      metrics.upstreamLatency.observe({ route }, (performance.now() - admitted) / 1000);
    };
    reply.raw.once("close", () => {
      const aborted = !reply.raw.writableFinished;
      if (aborted) clientGone = true;
      if (stage === "predicting") {
        if (aborted) metrics.cancelled.inc({ stage: "predicting" });
      } else if (stage === "queued") {
        // Also covers a ticket admitted a moment ago whose continuation has not run yet: cancel releases it.
        metrics.cancelled.inc({ stage: "queued" });
        scheduler.cancel(ticket!);
        released = true;
        leaveQueue?.();
      } else {
        if (aborted) {
          metrics.cancelled.inc({ stage: "in_flight" });
          abort.abort();
        }
        release();
      }
    });

    let pred: ProxyPrediction;
    try {
      pred = await predictor.predict({ model: parsed.model, prompt: parsed.prompt });
    } catch (e) {
      // Fail open: a prediction failure must not take the LLM down; such a request is scheduled as a long one.
      metrics.predictionFailures.inc();
      req.log.warn({ err: { message: (e as Error).message } }, "prediction failed; scheduling as a long request");
      pred = { expectedTokens: FALLBACK_TOKENS, reserveTokens: FALLBACK_TOKENS };
    }
    if (clientGone) return reply;
    const promptTokens = pred.promptTokens ?? countTokens(parsed.promptText);
    const job: ProxyJob = {
      route, model: parsed.model, promptTokens,
      expectedTokens: pred.expectedTokens * parsed.answers,
      reserveTokens: Math.ceil(pred.reserveTokens * parsed.answers),
    };

    // Wait for admission (onAdmit may run synchronously inside enqueue).
    const arrived = performance.now();
    try {
      const admittedNow = await new Promise<boolean>((resolve) => {
        leaveQueue = () => resolve(false);
        ticket = scheduler.enqueue(job, () => resolve(true));
        if (ticket.state === "queued") stage = "queued";
      });
      if (!admittedNow || clientGone) {
        // The client is gone: nothing to answer. A ticket admitted in the meantime gives its slot back.
        if (ticket && !released) {
          released = true;
          scheduler.cancel(ticket);
        }
        return reply;
      }
    } catch (e) {
      if (e instanceof QueueFullError) return refuse(reply, "queue_full", e.message);
      throw e;
    }
    stage = "upstream";
    admitted = performance.now();
    metrics.queueWait.observe((admitted - arrived) / 1000);
    const t = ticket!;

    // The body sent upstream: the client's, plus what the proxy needs.
    const upBody: Record<string, unknown> = { ...body };
    const stripUsage = parsed.stream && !parsed.includeUsage;
    if (stripUsage) upBody.stream_options = { ...(body.stream_options as object | undefined), include_usage: true };
    if (opts.upstreamKind === "vllm") upBody.priority = Math.round(job.expectedTokens);
    if (opts.capMaxTokens && job.reserveTokens > 0) {
      for (const k of ["max_tokens", "max_completion_tokens"] as const) {
        const given = body[k];
        if (k === "max_tokens" || given !== undefined) {
          upBody[k] = typeof given === "number" ? Math.min(given, job.reserveTokens) : job.reserveTokens;
        }
      }
    }

    let res: Dispatcher.ResponseData;
    try {
      res = await undiciRequest(base + req.url, {
        method: "POST",
        headers: { ...forwardHeaders(req.headers, ["content-length", "accept-encoding"]), "content-type": "application/json", "accept-encoding": "identity" },
        body: JSON.stringify(upBody),
        signal: abort.signal,
        dispatcher: agent,
      });
    } catch (e) {
      release();
      if (abort.signal.aborted) return reply;
      return upstreamFailure(reply, e);
    }

    const headers = forwardHeaders(res.headers as Record<string, string | string[] | undefined>, ["content-length"]);
    reply.code(res.statusCode).headers(headers);
    if (res.statusCode >= 400) {
      metrics.upstreamErrors.inc({ kind: "status" });
      return reply.send(res.body);
    }
    const contentType = String(res.headers["content-type"] ?? "");
    const isSse = contentType.includes("text/event-stream");
    let extendedOnce = false;
    const tap = isSse
      ? new SseTap({
        stripUsage, maxTextChars: 1 << 20,
        onContent: (chunks) => {
          if (chunks === 1) metrics.ttft.observe((performance.now() - admitted) / 1000);
          if (scheduler.extend(t, chunks)) {
            metrics.extensions.inc();
            extendedOnce = true;
          }
        },
      })
      : new JsonTap(maxResponseBytes);
    tap.once("end", () => {
      const n = observedTokens(tap.result, isSse);
      if (n === undefined || parsed.answers !== 1) return;
      // A non-streamed answer that outgrew its reservation is counted too (it is only known now).
      if (!isSse && !extendedOnce && scheduler.extend(t, n)) metrics.extensions.inc();
      const label = metrics.modelLabel(parsed.model);
      metrics.observations.inc({ model: label });
      if (Number.isFinite(pred.expectedTokens)) {
        metrics.predicted.observe({ model: label }, pred.expectedTokens);
        metrics.absError.observe({ model: label }, Math.abs(pred.expectedTokens - n));
      }
      metrics.actual.observe({ model: label }, n);
      const usagePrompt = tap.result.usage?.prompt_tokens;
      const observing = Promise.resolve(predictor.observe?.({
        model: parsed.model, prompt: parsed.prompt, output_tokens: n,
        ...(usagePrompt !== undefined ? { prompt_tokens: usagePrompt } : {}),
        ...(tap.result.id !== undefined ? { request_id: tap.result.id } : {}),
      })).catch((e: unknown) => req.log.warn({ err: { message: (e as Error).message } }, "observe failed"));
      pendingObservations.add(observing);
      void observing.finally(() => pendingObservations.delete(observing));
    });
    // pipeline destroys both sides on error; the client connection then closes, which releases the slot.
    pipeline(res.body, tap, (err) => {
      if (err && !abort.signal.aborted) metrics.upstreamErrors.inc({ kind: "aborted" });
    });
    return reply.send(tap);

    function observedTokens(r: TapResult, sse: boolean): number | undefined {
      if (!r.complete && sse) return undefined;
      const u = r.usage?.completion_tokens;
      if (u !== undefined) return u;
      if (!r.textComplete) return undefined;
      return r.text === "" ? 0 : countTokens(r.text);
    }
  }

  for (const route of ["/v1/chat/completions", "/v1/completions"] as const) {
    app.post(route, { schema: { body: route === "/v1/chat/completions" ? chatBodySchema(limits) : completionBodySchema(limits) } }, (req, reply) => llmRoute(route, req, reply));
  }

  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_req, reply) => {
    reply.code(state.status === "ready" ? 200 : 503);
    return { status: state.status };
  });
  app.get("/metrics", async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  // Everything else goes upstream byte for byte: its own context takes any body as a raw stream.
  await app.register(async (child) => {
    child.removeAllContentTypeParsers();
    child.addContentTypeParser("*", (_req, payload, done) => done(null, payload));
    child.all("/*", async (req, reply) => {
      const abort = new AbortController();
      reply.raw.once("close", () => {
        if (!reply.raw.writableFinished) abort.abort();
      });
      const hasBody = req.body !== undefined && req.method !== "GET" && req.method !== "HEAD";
      let res: Dispatcher.ResponseData;
      try {
        res = await undiciRequest(base + req.url, {
          method: req.method as Dispatcher.HttpMethod,
          headers: forwardHeaders(req.headers, hasBody ? [] : ["content-length"]),
          body: hasBody ? (req.body as NodeJS.ReadableStream as never) : undefined,
          signal: abort.signal,
          dispatcher: agent,
        });
      } catch (e) {
        if (abort.signal.aborted) return reply;
        return upstreamFailure(reply, e);
      }
      reply.code(res.statusCode).headers(forwardHeaders(res.headers as Record<string, string | string[] | undefined>));
      return reply.send(res.body);
    });
  });

  // Count proxied traffic by route template (never by raw URL: no label explosion).
  app.addHook("onResponse", async (req, reply) => {
    metrics.requests.inc({ route: req.routeOptions.url ?? "unmatched", status: String(reply.statusCode) });
  });

  return app;
}
