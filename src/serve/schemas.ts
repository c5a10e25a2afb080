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
    type: "object",
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
  type: "object",
  properties: { kind: { type: "string" }, edges: { type: "array", items: { type: "number" } } },
} as const;

export const predictResponseSchema = {
  description: "One prediction for `prompt`/`messages`; `{predictions}` for `prompts`.",
  anyOf: [predictionSchema, { type: "object", required: ["predictions"], properties: { predictions: { type: "array", items: predictionSchema } } }],
} as const;

export const errorResponses = { 400: errorSchema, 413: errorSchema, 415: errorSchema, 500: errorSchema, 503: errorSchema } as const;
