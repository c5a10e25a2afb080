/** GET /healthz (liveness: the event loop answers) and GET /readyz (model loaded, warmed up, not closing). */
import type { FastifyPluginAsync } from "fastify";
import type { ServeContext } from "../context.js";

const statusSchema = { type: "object", properties: { status: { type: "string" } } } as const;

export const healthRoutes: FastifyPluginAsync<ServeContext> = async (app, { state }) => {
  app.get("/healthz", {
    schema: { operationId: "getHealth", summary: "Liveness: 200 whenever the event loop answers", response: { 200: { description: "Alive.", ...statusSchema } } },
  }, async () => ({ status: "ok" }));

  app.get("/readyz", {
    schema: {
      operationId: "getReadiness",
      summary: "Readiness: 200 once the model is loaded, 503 while loading, after a failed load and while shutting down",
      response: {
        200: { description: "Ready: `{status: \"ready\"}`.", ...statusSchema },
        503: { description: "`loading`, `failed` or `closing`.", headers: { "retry-after": { type: "integer", minimum: 1 } }, ...statusSchema },
      },
    },
  }, async (_req, reply) => {
    reply.code(state.status === "ready" ? 200 : 503);
    if (state.status !== "ready") reply.header("retry-after", "1");
    return { status: state.status };
  });
};
