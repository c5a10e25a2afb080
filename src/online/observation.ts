/**
 * Observations are untrusted input (they arrive over HTTP from whoever runs the LLM server): validate every
 * field and name it in the error. A chat observation (`messages`) is reduced to the prompt the predictor
 * sees with the same rule as `POST /v1/chat/completions` (src/serve/chat.ts: the last user message).
 */
import { checkPrompt } from "../predictor/length-predictor.js";
import { chatPrompt, ChatPromptError, type ChatMessage } from "../serve/chat.js";
import { LenpredError, type ErrorPlace } from "../util/errors.js";
import { asObject, describe, getNonNegInt, getString } from "../util/fields.js";

/** What a client sends: one completed request of the target LLM. */
export interface Observation {
  prompt?: string;
  messages?: ChatMessage[];
  /** What the LLM server reports as `usage.completion_tokens`. */
  output_tokens: number;
  /** The target LLM (the `model` of an OpenAI body); absent = the default target. */
  model?: string;
  prompt_tokens?: number;
  request_id?: string;
}

/** A validated observation: the prompt is resolved, the target named. */
export interface ValidObservation {
  prompt: string;
  output_tokens: number;
  model: string;
  prompt_tokens?: number;
  request_id?: string;
  /** Position in the durable store, when it came from or went through one. */
  seq?: number;
}

export interface ObservationLimits {
  /** Longest prompt in characters (the predict limit). */
  maxPromptChars: number;
  /** Largest believable output length. */
  maxOutputTokens: number;
  /** Most observations in one call. */
  maxBatch: number;
}

export const DEFAULT_OBSERVATION_LIMITS: ObservationLimits = { maxPromptChars: 100_000, maxOutputTokens: 1_000_000, maxBatch: 1000 };
export const DEFAULT_TARGET = "default";
/** Target names: what an OpenAI `model` string looks like; no control characters, bounded length. */
const MODEL_NAME = /^[\w.:/@+-]{1,128}$/;

export function checkModelName(v: unknown, place: ErrorPlace = {}): string {
  if (v === undefined || v === null) return DEFAULT_TARGET;
  if (typeof v !== "string" || !MODEL_NAME.test(v)) {
    throw new LenpredError(`expected a model name of 1..128 letters, digits or . _ : / @ + -, got ${describe(v)}`, { ...place, field: place.field ?? "model" });
  }
  return v;
}

/** Validate one observation; `prefix` is its path in the body (e.g. "observations[3]"), used in field names. */
export function validateObservation(value: unknown, prefix = "", place: ErrorPlace = {}, limits = DEFAULT_OBSERVATION_LIMITS): ValidObservation {
  const f = (name: string) => (prefix ? `${prefix}.${name}` : name);
  const at = prefix ? { ...place, field: prefix } : place;
  const o = asObject(value, at);
  const named = (name: string): Record<string, unknown> => ({ [f(name)]: o[name] });
  const hasPrompt = o.prompt !== undefined && o.prompt !== null;
  const hasMessages = o.messages !== undefined && o.messages !== null;
  if (hasPrompt === hasMessages) throw new LenpredError("give exactly one of 'prompt' or 'messages'", { ...place, field: f(hasPrompt ? "messages" : "prompt") });
  let prompt: string;
  if (hasPrompt) {
    prompt = getString(named("prompt"), f("prompt"), place)!;
    checkPrompt(prompt, f("prompt"), place);
  } else {
    prompt = promptOfMessages(o.messages, f("messages"), place, limits.maxPromptChars);
  }
  if (prompt.length > limits.maxPromptChars && [...prompt].length > limits.maxPromptChars) {
    throw new LenpredError(`prompt is longer than ${limits.maxPromptChars} characters`, { ...place, field: f(hasPrompt ? "prompt" : "messages") });
  }
  const output_tokens = getNonNegInt(named("output_tokens"), f("output_tokens"), place)!;
  if (output_tokens > limits.maxOutputTokens) throw new LenpredError(`output_tokens ${output_tokens} is above the limit ${limits.maxOutputTokens}`, { ...place, field: f("output_tokens") });
  const model = checkModelName(o.model, { ...place, field: f("model") });
  const prompt_tokens = getNonNegInt(named("prompt_tokens"), f("prompt_tokens"), place, { optional: true });
  const request_id = getString(named("request_id"), f("request_id"), place, { optional: true });
  if (request_id !== undefined && request_id.length > 256) throw new LenpredError("request_id is longer than 256 characters", { ...place, field: f("request_id") });
  const out: ValidObservation = { prompt, output_tokens, model };
  if (prompt_tokens !== undefined) out.prompt_tokens = prompt_tokens;
  if (request_id !== undefined) out.request_id = request_id;
  return out;
}

/** Validate a batch: `{observations: [...]}`, an array, or one observation. */
export function validateObservations(body: unknown, limits = DEFAULT_OBSERVATION_LIMITS, place: ErrorPlace = {}): ValidObservation[] {
  let list: unknown[];
  let name: string;
  if (Array.isArray(body)) { list = body; name = ""; }
  else if (body !== null && typeof body === "object" && "observations" in body) {
    const v = (body as { observations: unknown }).observations;
    if (!Array.isArray(v)) throw new LenpredError(`expected an array, got ${describe(v)}`, { ...place, field: "observations" });
    list = v;
    name = "observations";
  } else return [validateObservation(body, "", place, limits)];
  if (list.length === 0) throw new LenpredError("no observations", { ...place, field: name || "observations" });
  if (list.length > limits.maxBatch) throw new LenpredError(`${list.length} observations in one call, above the limit ${limits.maxBatch}`, { ...place, field: name || "observations" });
  return list.map((v, i) => validateObservation(v, `${name}[${i}]`, place, limits));
}

function promptOfMessages(v: unknown, field: string, place: ErrorPlace, maxChars: number): string {
  if (!Array.isArray(v) || v.length === 0) throw new LenpredError(`expected a non-empty array of {role, content}, got ${describe(v)}`, { ...place, field });
  v.forEach((m, i) => {
    const mf = `${field}[${i}]`;
    const o = asObject(m, { ...place, field: mf });
    if (typeof o.role !== "string") throw new LenpredError(`expected a string, got ${describe(o.role)}`, { ...place, field: `${mf}.role` });
    const c = o.content;
    if (!(c === undefined || c === null || typeof c === "string" || (Array.isArray(c) && c.every((p) => p !== null && typeof p === "object" && typeof (p as { type?: unknown }).type === "string")))) {
      throw new LenpredError(`expected a string or an array of {type, text?} parts, got ${describe(c)}`, { ...place, field: `${mf}.content` });
    }
  });
  try {
    return chatPrompt(v as ChatMessage[], maxChars);
  } catch (e) {
    if (e instanceof ChatPromptError) throw new LenpredError(e.message, { ...place, field: e.field === "messages" ? field : `${field}${e.field.slice("messages".length)}` });
    throw e;
  }
}
