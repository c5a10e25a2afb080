/**
 * POST /v1/predict: {prompt} | {prompts: [...]} | OpenAI chat {model?, messages: [...]}, optional quantile
 * (0 < q < 1, decoded by `LengthPredictor`, the library's one quantile semantics). Prompts go through the
 * micro-batcher to the base predictor; overload, queue-time budget, loading and shutdown are 503 +
 * Retry-After; a prompt the predictor fails on is a 500 for its request only.
 */
import type { FastifyPluginAsync } from "fastify";
import type { FromSchema } from "json-schema-to-ts";
import { checkPrompt } from "../../predictor/length-predictor.js";
import type { Prediction } from "../../model/prediction.js";
import { chatPrompt } from "../chat.js";
import type { ServeContext } from "../context.js";
import { checkInput, HttpError } from "../errors.js";
import { errorResponses, predictBodySchema, predictResponseSchema } from "../schemas.js";
import { upperBound } from "../../data/buckets.js";
import { quantileBucket } from "../../model/decode.js";
import { checkModelName } from "../../online/observation.js";
import type { ServeState } from "../context.js";

/** The body as its schema admits it (the schema's oneOf is checked again below to name the field). */
type PredictBody = FromSchema<ReturnType<typeof predictBodySchema>>;

export const predictRoute: FastifyPluginAsync<ServeContext> = async (app, { state }) => {
  const { limits, metrics } = state;
  app.post<{ Body: PredictBody }>("/v1/predict", {
    schema: {
      operationId: "predict",
      summary: "Predict output lengths",
      body: predictBodySchema(limits),
      response: { 200: predictResponseSchema, ...errorResponses },
    },
  }, async (req) => {
    const body = req.body;
    const given = (["prompt", "prompts", "messages"] as const).filter((k) => body[k] !== undefined);
    if (given.length !== 1) {
      const msg = given.length === 0 ? "give one of prompt, prompts or messages" : `give only one of prompt, prompts or messages (got ${given.join(", ")})`;
      throw new HttpError(400, msg, given[1] ?? "prompt");
    }
    const prompts = checkInput(() => {
      const ps = body.prompt !== undefined ? [body.prompt] : body.prompts ?? [chatPrompt(body.messages!, limits.maxPromptChars)];
      ps.forEach((p, i) => checkPrompt(p, body.prompt !== undefined ? "prompt" : body.prompts !== undefined ? `prompts[${i}]` : "messages"));
      return ps;
    });
    if (state.status !== "ready" || !state.batcher) {
      const reason = state.status === "closing" ? "shutting_down" : "loading";
      metrics.rejected.inc({ reason });
      throw new HttpError(503, state.status === "failed" ? "model failed to load, or its worker died" : reason === "loading" ? "model is loading" : "server is shutting down");
    }
    // Batcher overload/shutdown and a model's refusal of `quantile` are mapped by errors.ts.
    const preds: Prediction[] = state.online
      ? await onlinePredict(state, prompts, body, checkInput(() => checkModelName(body.model)))
      : await state.batcher.submit(prompts, body.quantile);
    metrics.observePredictions(preds);
    return body.prompts !== undefined ? { predictions: preds } : preds[0];
  });
};

/**
 * With online learning: the learner's prediction for the target `model` (calibrated expectedTokens and
 * probabilities, reserveTokens at the server's level). A request's `quantile` keeps its meaning for
 * `bucket`/`upperBound`: the smallest bucket whose cumulative probability reaches q — of the learned
 * distribution when the target has one — and, for a base without probabilities, the base's own quantile decode.
 */
async function onlinePredict(state: ServeState, prompts: string[], body: PredictBody, model: string): Promise<Prediction[]> {
  const preds: Prediction[] = await state.online!.predictBatch(prompts, { model });
  const q = body.quantile;
  if (q === undefined) return preds;
  const buckets = state.predictor!.buckets;
  const missing = preds.flatMap((p, i) => (p.probabilities ? [] : [i]));
  const decoded = missing.length ? await state.batcher!.submit(missing.map((i) => prompts[i]!), q) : [];
  return preds.map((p, i) => {
    const j = missing.indexOf(i);
    if (j >= 0) return { ...p, bucket: decoded[j]!.bucket, upperBound: decoded[j]!.upperBound };
    const bucket = quantileBucket(p.probabilities!, q);
    return { ...p, bucket, upperBound: upperBound(buckets, bucket) };
  });
}
