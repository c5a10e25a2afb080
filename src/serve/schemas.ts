/**
 * JSON schemas of the HTTP API. Fastify validates bodies with them (types are never coerced: "5" is not
 * a number and 5 is not a prompt), serialises responses with them, and @fastify/swagger turns them into
 * /openapi.json, so the document cannot drift from what the server enforces.
 */
import type { ServeLimits } from "./limits.js";

export const CHAT_ROLES = ["system", "developer", "user", "assistant", "tool", "function"] as const;

export function predictBodySchema(limits: ServeLimits) {
  const prompt = { type: "string", maxLength: limits.maxPromptChars } as const;
  return {
    $id: "PredictRequest",
    type: "object",
    // Exactly one of the three input forms (the route turns a violation into a 400 naming the field).
    oneOf: [{ required: ["prompt"] }, { required: ["prompts"] }, { required: ["messages"] }],
    description:
      "Give exactly one of `prompt`, `prompts` or `messages` (an OpenAI chat body; the prompt is the text of the last user message). " +
      "Other OpenAI fields (temperature, max_tokens, ...) are accepted and ignored.",
    properties: {
      prompt: { ...prompt, description: "One prompt; the response is one prediction." },
      prompts: {
        type: "array", minItems: 1, maxItems: limits.maxPrompts, items: prompt,
        description: "Several prompts; the response is `{predictions: [...]}` in the same order.",
      },
      messages: {
        type: "array", minItems: 1, maxItems: limits.maxMessages,
        description: "OpenAI chat messages; predicts the length of the assistant's reply to the last user message.",
        items: {
          type: "object",
          required: ["role"],
          properties: {
            role: { type: "string", enum: [...CHAT_ROLES] },
            // string, array of content parts, or null (assistant turns with tool calls)
            content: {
              type: ["string", "array", "null"],
              maxLength: limits.maxPromptChars,
              maxItems: limits.maxMessages,
              items: {
                type: "object",
                required: ["type"],
                properties: { type: { type: "string" }, text: { type: "string", maxLength: limits.maxPromptChars } },
              },
            },
          },
        },
      },
      model: { type: "string", maxLength: 256, description: "OpenAI model name; accepted and ignored." },
      quantile: {
        type: "number", exclusiveMinimum: 0, exclusiveMaximum: 1,
        description:
          "Conservative mode, 0 < quantile < 1 (LengthPredictor's range): reserve for the q-quantile of the predicted length " +
          "instead of the most likely bucket. Classification models: the smallest bucket whose cumulative probability is >= q; " +
          "regression head: from the residual spread recorded at training; quantile head: its levels, interpolated. " +
          "Models with no such distribution (median, majority, linear baselines) answer 400 on `quantile`. " +
          "Requests with different quantiles are micro-batched separately.",
      },
    },
  } as const;
}

export const predictionSchema = {
  $id: "Prediction",
  type: "object",
  required: ["bucket", "upperBound", "expectedTokens"],
  properties: {
    bucket: { type: "integer", description: "Predicted bucket index." },
    upperBound: { type: "number", description: "Tokens to reserve: the bucket's upper edge." },
    expectedTokens: { type: "number", description: "Point estimate in tokens." },
    probabilities: { type: "array", items: { type: "number" }, description: "Per-bucket probabilities, when the predictor has them." },
  },
} as const;

export const errorSchema = {
  $id: "Error",
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["message", "field"],
      properties: {
        message: { type: "string" },
        field: { type: ["string", "null"], description: "The offending body field (e.g. `prompts[3]`), or null when the request as a whole is at fault." },
      },
    },
  },
} as const;

export const bucketsSchema = {
  $id: "BucketScheme",
  type: "object",
  properties: { kind: { type: "string" }, edges: { type: "array", items: { type: "number" } } },
} as const;

export const predictionListSchema = {
  $id: "PredictionList",
  type: "object",
  required: ["predictions"],
  properties: { predictions: { type: "array", items: { $ref: "Prediction#" } } },
} as const;

/** Shared schemas, registered with `app.addSchema`: named `components.schemas` in the OpenAPI document. */
export const SHARED_SCHEMAS = [predictionSchema, predictionListSchema, errorSchema, bucketsSchema] as const;

export const errorRef = { $ref: "Error#" } as const;

export const predictResponseSchema = {
  description: "One prediction for `prompt`/`messages`; `{predictions}` for `prompts`.",
  anyOf: [{ $ref: "Prediction#" }, { $ref: "PredictionList#" }],
} as const;

const retryAfter = {
  "retry-after": { type: "integer", minimum: 1, description: "Seconds to wait before retrying (every 503 carries it)." },
} as const;

/** 503 with its Retry-After header documented. */
export const unavailableResponse = {
  description: "Overloaded (queue full or queue-time budget exceeded), model loading or failed to load, or shutting down.",
  headers: retryAfter,
  ...errorRef,
} as const;

export const errorResponses = {
  400: { description: "Invalid request; `field` names the offending body field.", ...errorRef },
  405: { description: "Method not allowed (the `Allow` header lists the allowed ones).", ...errorRef },
  413: { description: "Body larger than the server's limit.", ...errorRef },
  415: { description: "Content type other than application/json.", ...errorRef },
  500: { description: "The predictor failed on a prompt of this request.", ...errorRef },
  503: unavailableResponse,
} as const;
