/** GET /openapi.json: the OpenAPI document @fastify/swagger generates from the routes' own schemas. */
import type { FastifyPluginAsync } from "fastify";
import type { ServeContext } from "../context.js";

export const openapiRoute: FastifyPluginAsync<ServeContext> = async (app) => {
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
};
