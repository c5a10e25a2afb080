/** GET /metrics: Prometheus text format (src/serve/metrics.ts). */
import type { FastifyPluginAsync } from "fastify";
import type { ServeContext } from "../context.js";

export const metricsRoute: FastifyPluginAsync<ServeContext> = async (app, { state }) => {
  app.get("/metrics", { schema: { operationId: "getMetrics", summary: "Prometheus metrics", produces: ["text/plain"] } }, async (_req, reply) => {
    reply.type(state.metrics.registry.contentType);
    return state.metrics.registry.metrics();
  });
};
