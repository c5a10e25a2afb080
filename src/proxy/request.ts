/**
 * What the proxy reads from an OpenAI request body: the text the predictor sees, how many answers are asked
 * for, and whether it streams. Body shapes are checked by the JSON schemas below, which reuse `lenpred serve`'s
 * message and prompt schemas (and so its limits); unknown OpenAI fields are passed upstream untouched.
 */
import { chatPrompt, ChatPromptError, messageText, type ChatMessage } from "../serve/chat.js";
import type { ServeLimits } from "../serve/limits.js";
import { predictBodySchema } from "../serve/schemas.js";
import { checkPrompt } from "../predictor/length-predictor.js";
import { LenpredError } from "../util/errors.js";

export type LlmRoute = "/v1/chat/completions" | "/v1/completions";

export function chatBodySchema(limits: ServeLimits) {
  const p = predictBodySchema(limits).properties;
  return {
    type: "object",
    required: ["messages"],
    properties: { messages: p.messages, model: p.model, stream: { type: "boolean" }, n: { type: "integer", minimum: 1 } },
  } as const;
}

export function completionBodySchema(limits: ServeLimits) {
  const p = predictBodySchema(limits).properties;
  return {
    type: "object",
    required: ["prompt"],
    properties: {
      // The proxy predicts from text: token-id prompts are refused with the same 400 as a wrong type.
      prompt: { anyOf: [p.prompt, { type: "array", minItems: 1, maxItems: limits.maxPrompts, items: p.prompt }] },
      model: p.model,
      stream: { type: "boolean" },
      n: { type: "integer", minimum: 1 },
    },
  } as const;
}

export interface ParsedRequest {
  model?: string;
  /** What the predictor sees (serve's rule for chat: the last user message). */
  prompt: string;
  /** All prompt text sent upstream (for counting prompt tokens when the predictor does not). */
  promptText: string;
  /** Answers generated: n × prompts. Observations are made only when it is 1 (usage is a total otherwise). */
  answers: number;
  stream: boolean;
  includeUsage: boolean;
}

/** Throws LenpredError naming the field (→ 400 `{error: {message, field}}`). */
export function parseLlmBody(route: LlmRoute, body: Record<string, unknown>, limits: ServeLimits): ParsedRequest {
  const n = typeof body.n === "number" ? body.n : 1;
  const stream = body.stream === true;
  const so = body.stream_options as { include_usage?: unknown } | undefined | null;
  const includeUsage = stream && typeof so === "object" && so !== null && so.include_usage === true;
  const model = typeof body.model === "string" ? body.model : undefined;
  if (route === "/v1/chat/completions") {
    const messages = body.messages as ChatMessage[];
    let prompt: string;
    try {
      prompt = chatPrompt(messages, limits.maxPromptChars);
    } catch (e) {
      if (e instanceof ChatPromptError) throw new LenpredError(e.message, { field: e.field });
      throw e;
    }
    checkPrompt(prompt, "messages");
    return { model, prompt, promptText: messages.map((m) => messageText(m.content)).join("\n"), answers: n, stream, includeUsage };
  }
  const prompts = typeof body.prompt === "string" ? [body.prompt] : (body.prompt as string[]);
  prompts.forEach((p, i) => checkPrompt(p, prompts.length === 1 && typeof body.prompt === "string" ? "prompt" : `prompt[${i}]`));
  // Several prompts: the first one's prediction stands for each (the server scales by `answers`).
  return { model, prompt: prompts[0]!, promptText: prompts.join("\n"), answers: n * prompts.length, stream, includeUsage };
}
