/** GET /v1/model: the predictor served, its bucket scheme and the server's batching settings and limits. */
import type { FastifyPluginAsync } from "fastify";
import type { ServeContext } from "../context.js";
import { HttpError } from "../errors.js";
import { unavailableResponse } from "../schemas.js";

export const modelRoute: FastifyPluginAsync<ServeContext> = async (app, { state, settings }) => {
  app.get("/v1/model", {
    schema: {
      operationId: "getModel",
      summary: "The predictor being served",
      response: {
        200: {
          description: "The model's name and bucket scheme, the batching settings and the request limits.",
          type: "object",
          properties: {
            name: { type: "string" }, buckets: { $ref: "BucketScheme#" }, maxBatch: { type: "integer" }, maxWaitMs: { type: "number" },
            maxQueue: { type: "integer" }, maxQueueMs: { type: "number" }, limits: { type: "object", additionalProperties: { type: "integer" } },
          },
        },
        503: unavailableResponse,
      },
    },
  }, async () => {
    if (!state.predictor) throw new HttpError(503, "model is loading");
    return { name: state.predictor.name, buckets: state.predictor.buckets, ...settings, limits: state.limits };
  });
};
