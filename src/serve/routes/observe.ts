/**
 * POST /v1/observe: what the target LLM actually answered (`output_tokens` = its `usage.completion_tokens`),
 * one observation or `{observations: [...]}`. Answered 202 only once the observations are durable in the state
 * dir (`OnlineService.observe`: fsync, group commit); learning follows in the background, in order.
 * GET /v1/observe/stats: per-target live quality and counts (reads stay open).
 *
 * Observations are untrusted: the body schema and the learner's validation (LenpredError → 400 naming the
 * field), the target cap (400 on `model`), a bearer token for writes (`--observe-token`, 401), and a bound on
 * the not-yet-learned backlog (503 + Retry-After) so a flood cannot grow memory.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import type { ServeContext } from "../context.js";
import { HttpError } from "../errors.js";
import { DEFAULT_MAX_BACKLOG } from "../online.js";
import { errorRef, observeBodySchema, unavailableResponse } from "../schemas.js";

const digest = (s: string) => createHash("sha256").update(s).digest();

/** `Authorization: Bearer <token>`, compared in constant time (digests: equal lengths whatever was sent). */
function authorized(req: FastifyRequest, token: Buffer): boolean {
  const h = req.headers.authorization;
  const m = typeof h === "string" ? /^Bearer\s+(.+)$/i.exec(h.trim()) : null;
  return m !== null && timingSafeEqual(digest(m[1]!), token);
}

export const observeRoute: FastifyPluginAsync<ServeContext> = async (app, { state, online }) => {
  if (!online) return;
  const { metrics, limits } = state;
  const token = online.observeToken ? digest(online.observeToken) : undefined;
  const maxBacklog = online.maxBacklog ?? DEFAULT_MAX_BACKLOG;
  const unauthorized = () => {
    metrics.observeRequests.inc({ result: "unauthorized" });
    return new HttpError(401, "POST /v1/observe needs 'Authorization: Bearer <token>' (the server's --observe-token)", "authorization", 1, {
      "www-authenticate": 'Bearer realm="lenpred observe"',
    });
  };

  app.post("/v1/observe", {
    // Authenticate before the body is read: an unauthenticated client cannot make the server parse 1 MB.
    onRequest: async (req) => {
      if (token && !authorized(req, token)) throw unauthorized();
    },
    schema: {
      operationId: "observe",
      summary: "Report completed requests of the target LLM (learned online, per target model)",
      description:
        "Answers 202 once the observations are durable in `--state-dir` (fsync; without a state dir: accepted in memory). " +
        "With `--observe-token`, needs `Authorization: Bearer <token>`.",
      ...(token ? { security: [{ bearer: [] }] } : {}),
      body: observeBodySchema(limits, online.maxObservations ?? 1000),
      response: {
        202: { description: "Accepted (durable when the server has a state dir).", $ref: "ObserveAccepted#" },
        400: { description: "Invalid observation; `field` names it (e.g. `observations[3].output_tokens`), or a new target beyond `--max-models` (`model`).", ...errorRef },
        401: { description: "Missing or wrong bearer token (`--observe-token`).", ...errorRef },
        413: { description: "Body larger than the server's limit.", ...errorRef },
        415: { description: "Content type other than application/json.", ...errorRef },
        503: unavailableResponse,
      },
    },
  }, async (req, reply) => {
    const svc = state.online;
    if (!svc || state.status !== "ready") {
      throw new HttpError(503, state.status === "closing" ? "server is shutting down" : state.status === "failed" ? "model failed to load" : "model is loading");
    }
    if (svc.learner.pending >= maxBacklog) {
      metrics.observeRequests.inc({ result: "overloaded" });
      throw new HttpError(503, `${svc.learner.pending} observations are waiting to be learned (limit ${maxBacklog}); retry later`, null, 1);
    }
    // The learner validates each observation: its LenpredError is the client's 400 (errors.ts).
    const r = await svc.observe(req.body);
    metrics.observeRequests.inc({ result: "accepted" });
    reply.code(202);
    return { accepted: r.accepted, durable: svc.store !== undefined, ...(r.lastSeq !== undefined ? { lastSeq: r.lastSeq } : {}) };
  });

  app.get("/v1/observe/stats", {
    schema: {
      operationId: "getObserveStats",
      summary: "Online learning: per-target observation counts and live quality over the sliding window",
      response: { 200: { description: "`OnlineService.stats()` (NaN → null).", $ref: "ObserveStats#" }, 503: unavailableResponse },
    },
  }, async () => {
    const svc = state.online;
    if (!svc) throw new HttpError(503, "model is loading");
    const s = svc.stats();
    const fin = (v: number) => (Number.isFinite(v) ? v : null);
    return {
      ...s,
      backlog: svc.learner.pending,
      durable: svc.store !== undefined,
      targets: s.targets.map((t) => ({ ...t, mae: fin(t.mae), coverage: fin(t.coverage), kendallTau: fin(t.kendallTau), baseMae: fin(t.baseMae), baseCoverage: fin(t.baseCoverage), scale: fin(t.scale), slope: fin(t.slope) })),
    };
  });
};
