/**
 * JSON schemas of the HTTP API. Fastify validates bodies with them (types are never coerced: "5" is not
 * a number and 5 is not a prompt), serialises responses with them, and @fastify/swagger turns them into
 * /openapi.json, so the document cannot drift from what the server enforces.
 */
import type { ServeLimits } from "./limits.js";

const CHAT_ROLES = ["system", "developer", "user", "assistant", "tool", "function"] as const;

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
      model: {
        type: "string", maxLength: 256,
        description:
          "Target LLM (the OpenAI `model` string), for every body form: the prediction reflects what was learned from that LLM's " +
          "observations (`POST /v1/observe`); a name never observed gets the base model's prediction. Absent = the `default` target. " +
          "1–128 characters of letters, digits and `. _ : / @ + -` (400 on `model` otherwise).",
      },
      quantile: {
        type: "number", exclusiveMinimum: 0, exclusiveMaximum: 1,
        description:
          "Conservative mode, 0 < quantile < 1 (LengthPredictor's range): reserve for the q-quantile of the predicted length " +
          "instead of the most likely bucket. Classification models: the smallest bucket whose cumulative probability is >= q; " +
          "regression head: from the residual spread recorded at training; quantile head: its levels, interpolated. " +
          "Models with no such distribution (median, majority, linear baselines) answer 400 on `quantile`. " +
          "Requests with different quantiles are micro-batched separately. For a target with learned state the buckets are its learned distribution. " +
          "It sets `bucket`/`upperBound` only: the level of `reserveTokens` is the server's (`--quantile`, default 0.9).",
      },
    },
  } as const;
}

const predictionSchema = {
  $id: "Prediction",
  type: "object",
  required: ["bucket", "upperBound", "expectedTokens"],
  properties: {
    bucket: { type: "integer", description: "Predicted bucket index." },
    upperBound: { type: "number", description: "Tokens to reserve: the bucket's upper edge." },
    expectedTokens: { type: "number", description: "Point estimate in tokens." },
    probabilities: { type: "array", items: { type: "number" }, description: "Per-bucket probabilities, when the predictor has them." },
    reserveTokens: {
      // Whole tokens once learned; the base's own reservation (a bucket edge) before, which may be fractional.
      type: "number",
      description: "Tokens to reserve so that the output fits with the server's reservation level (`--quantile`, default 0.9): the calibrated quantile of the length, continuous, may exceed the last bucket edge (online learning).",
    },
    model: { type: "string", description: "Target model the prediction was made for (online learning)." },
    observations: { type: "integer", description: "Observations of that target learned so far (online learning)." },
  },
} as const;

/** One completed request of the target LLM (`POST /v1/observe`). */
export function observationSchema(limits: ServeLimits) {
  return {
    $id: "Observation",
    type: "object",
    description: "One completed request of the target LLM: exactly one of `prompt` / `messages`, and `output_tokens`.",
    properties: {
      prompt: { type: "string", maxLength: limits.maxPromptChars, description: "The prompt, as for `POST /v1/predict`." },
      messages: {
        type: "array", minItems: 1, maxItems: limits.maxMessages, items: { type: "object" },
        description: "An OpenAI chat body's messages; the prompt is the last user message (the chat rule of `POST /v1/predict`).",
      },
      output_tokens: { type: "integer", minimum: 0, maximum: 1_000_000, description: "What the LLM server reported as `usage.completion_tokens`." },
      model: { type: "string", maxLength: 128, description: "Target LLM (absent = `default`); 1–128 of letters, digits and `. _ : / @ + -`." },
      prompt_tokens: { type: "integer", minimum: 0 },
      request_id: { type: "string", maxLength: 256 },
    },
  } as const;
}

/** `POST /v1/observe` body: one observation, or `{observations: [...]}`. */
export function observeBodySchema(limits: ServeLimits, maxObservations: number) {
  return {
    $id: "ObserveRequest",
    type: "object",
    description: `One \`Observation\`, or \`{observations: [...]}\` with 1–${maxObservations} of them. A batch with an invalid record is refused whole (400 naming e.g. \`observations[3].output_tokens\`).`,
    properties: {
      ...observationSchema(limits).properties,
      observations: { type: "array", minItems: 1, maxItems: maxObservations, items: { $ref: "Observation#" } },
    },
  } as const;
}

const observeAcceptedSchema = {
  $id: "ObserveAccepted",
  type: "object",
  required: ["accepted"],
  properties: {
    accepted: { type: "integer", description: "Observations accepted (durable in the state dir when the server has one)." },
    durable: { type: "boolean", description: "Whether they were fsynced to `--state-dir` before this answer." },
    lastSeq: { type: "integer", description: "Sequence number of the last one in the state dir's store." },
  },
} as const;

const num = { type: ["number", "null"] } as const;
const observeStatsSchema = {
  $id: "ObserveStats",
  type: "object",
  properties: {
    targets: {
      type: "array",
      items: {
        type: "object",
        properties: {
          model: { type: "string" }, observations: { type: "integer" }, window: { type: "integer" }, mae: num, coverage: num, kendallTau: num,
          baseMae: num, baseCoverage: num, drift: { type: "boolean" }, scale: num, slope: num,
        },
      },
    },
    accepted: { type: "integer" }, refused: { type: "integer" }, resumed: { type: "integer" }, backlog: { type: "integer" },
    retrains: { type: "integer" }, retrainsAccepted: { type: "integer" }, retraining: { type: "boolean" }, durable: { type: "boolean" },
    store: { type: "object", additionalProperties: { type: "integer" } },
    lastRetrain: { type: "array", items: { type: "object", additionalProperties: true } },
    retrainYield: {
      type: "object", description: "How often, and for how long in all, retrain children were stopped while predictions were in flight.",
      properties: { pauses: { type: "integer" }, pausedMs: { type: "number" } },
    },
  },
} as const;

const errorSchema = {
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

const bucketsSchema = {
  $id: "BucketScheme",
  type: "object",
  properties: { kind: { type: "string" }, edges: { type: "array", items: { type: "number" } } },
} as const;

const predictionListSchema = {
  $id: "PredictionList",
  type: "object",
  required: ["predictions"],
  properties: { predictions: { type: "array", items: { $ref: "Prediction#" } } },
} as const;

/** Shared schemas, registered with `app.addSchema`: named `components.schemas` in the OpenAPI document. */
export const SHARED_SCHEMAS = [predictionSchema, predictionListSchema, errorSchema, bucketsSchema, observeAcceptedSchema, observeStatsSchema] as const;

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
