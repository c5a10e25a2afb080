/** Every route plugin of `lenpred serve`, registered in this order. A new endpoint: a new file + one line here. */
import type { FastifyPluginAsync } from "fastify";
import type { ServeContext } from "../context.js";
import { healthRoutes } from "./health.js";
import { metricsRoute } from "./metrics.js";
import { modelRoute } from "./model.js";
import { openapiRoute } from "./openapi.js";
import { observeRoute } from "./observe.js";
import { predictRoute } from "./predict.js";

export const ROUTES: Array<FastifyPluginAsync<ServeContext>> = [predictRoute, modelRoute, healthRoutes, metricsRoute, openapiRoute, observeRoute];
