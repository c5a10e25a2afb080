/** GET /metrics: Prometheus text format (src/serve/metrics.ts). */
import type { FastifyPluginAsync } from "fastify";
import type { ServeContext } from "../context.js";

export const metricsRoute: FastifyPluginAsync<ServeContext> = async (app, { state }) => {
  app.get("/metrics", {
    schema: {
      operationId: "getMetrics",
      summary: "Prometheus metrics (text exposition format)",
      response: { 200: { description: "Prometheus text format 0.0.4.", content: { "text/plain": { schema: { type: "string" } } } } },
    },
  }, async (_req, reply) => {
    reply.type(state.metrics.registry.contentType);
    return state.metrics.registry.metrics();
  });
};
