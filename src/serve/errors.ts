/**
 * The one error body of `lenpred serve`, `{error: {message, field}}`, for every 4xx/5xx: route errors,
 * Fastify's own (validation, body parsing, 404/405) and framing errors answered from the HTTP layer
 * before any route runs (400 malformed request, 431 headers too large, 408 request timeout).
 */
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { LenpredError } from "../util/errors.js";
import { QueueFullError, QueueTimeoutError, ShuttingDownError } from "./batcher.js";
import { ChatPromptError } from "./chat.js";
import type { ServeState } from "./context.js";
import { isQuantileRefusal } from "./quantile.js";

/**
 * What a route throws to answer with an error: the status, the message and the body field at fault.
 * Routes never write error replies themselves; `errorHandler` below is the one place errors become replies.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field: string | null = null,
    /** 503: seconds for Retry-After (every 503 has one; default 1). */
    readonly retryAfterSeconds = 1,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** Client input refused by a check that throws LenpredError/ChatPromptError naming the field: a 400. */
function badRequest(e: unknown): unknown {
  if (e instanceof LenpredError) return new HttpError(400, e.message, e.place.field ?? null);
  if (e instanceof ChatPromptError) return new HttpError(400, e.message, e.field);
  return e;
}

/** Runs checks of client input; what they refuse is the client's 400 (see `badRequest`). */
export function checkInput<T>(check: () => T): T {
  try {
    return check();
  } catch (e) {
    throw badRequest(e);
  }
}

/**
 * The server's error handler (`app.setErrorHandler`): HttpError as thrown, the batcher's overload and
 * shutdown as 503 (counted in `lenpred_rejected_total`), a model's refusal of a request's quantile as 400,
 * Fastify's validation, media-type and other 4xx errors; anything else is logged and a 500.
 */
export function errorHandler(state: ServeState) {
  return (err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    if (err instanceof HttpError) {
      for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
      return err.status === 503 ? sendUnavailable(reply, err.message, err.retryAfterSeconds) : sendError(reply, err.status, err.message, err.field);
    }
    if (err instanceof QueueFullError || err instanceof QueueTimeoutError) {
      state.metrics.rejected.inc({ reason: err instanceof QueueFullError ? "queue_full" : "queue_timeout" });
      return sendUnavailable(reply, err.message, err.retryAfterSeconds);
    }
    if (err instanceof ShuttingDownError) {
      state.metrics.rejected.inc({ reason: "shutting_down" });
      return sendUnavailable(reply, err.message);
    }
    if (req.routeOptions.url === "/v1/observe" && err instanceof LenpredError) {
      // The learner refused an observation (it names record and field).
      state.metrics.observeRequests.inc({ result: "invalid" });
      return sendError(reply, 400, messageOf(err), fieldOf(err, req.body));
    }
    if (req.routeOptions.url === "/v1/predict") {
      // Predicting for a target the learner refuses (e.g. beyond --max-models), or at a quantile the model cannot decode.
      if (err instanceof LenpredError && err.place.field === "model") return sendError(reply, 400, err.message, "model");
      const quantile = (req.body as { quantile?: number } | null | undefined)?.quantile;
      if (isQuantileRefusal(err, quantile)) return sendError(reply, 400, `${err.message} (model '${state.predictor!.name}')`, "quantile");
    }
    if (err.validation && err.validation.length > 0) {
      const { message, field } = validationError(err, req.body);
      return sendError(reply, 400, message, field);
    }
    const status = err.statusCode ?? 500;
    if (err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") return sendError(reply, 415, "content-type must be application/json");
    if (status >= 400 && status < 500) return sendError(reply, status, err.message);
    req.log.error({ err }, "request failed");
    return sendError(reply, 500, "internal error while predicting");
  };
}

/** A LenpredError's field as a body path: a cap refusal names `observations[i].model` in a batch. */
function fieldOf(e: LenpredError, body: unknown): string | null {
  const { record, field } = e.place;
  if (record !== undefined && field !== undefined && !field.includes("[")) {
    const batch = body !== null && typeof body === "object" && "observations" in body;
    return batch ? `observations[${record}].${field}` : field;
  }
  return field ?? null;
}

/** The message without the "field 'x': " prefix LenpredError adds (the body carries the field). */
function messageOf(e: LenpredError): string {
  const m = /^(?:record \d+, )?field '[^']*': (.*)$/s.exec(e.message);
  return m ? m[1]! : e.message;
}

function errorBody(message: string, field: string | null = null): { error: { message: string; field: string | null } } {
  return { error: { message, field } };
}

export function sendError(reply: FastifyReply, status: number, message: string, field: string | null = null): FastifyReply {
  return reply.code(status).type("application/json; charset=utf-8").send(errorBody(message, field));
}

/** 503s always say when to come back: queue full/timed out (estimated), loading, shutting down. */
export function sendUnavailable(reply: FastifyReply, message: string, retryAfterSeconds = 1): FastifyReply {
  reply.header("retry-after", String(Math.max(1, Math.ceil(retryAfterSeconds))));
  return sendError(reply, 503, message);
}

/** Fastify `clientErrorHandler`: Node's parser rejected the bytes, so write the response on the socket. */
export function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, message] =
    err.code === "HPE_HEADER_OVERFLOW" ? [431, "request header fields too large"]
    : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? [408, "request timed out before it was complete"]
    : [400, `malformed HTTP request (${err.code ?? "parse error"})`];
  const body = JSON.stringify(errorBody(message));
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** "/messages/0/content" + missing "role" → "messages[0].content.role"; "" → "body". */
export function fieldFromPointer(pointer: string, extra?: string): string {
  const parts = pointer.split("/").slice(1).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  if (extra !== undefined) parts.push(extra);
  let out = "";
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out === "" ? p : `.${p}`;
  return out === "" ? "body" : out;
}

/** Not exactly one of prompt / prompts / messages: name the second one given, or `prompt` when none is. */
function inputFormError(body: unknown): { message: string; field: string } {
  const b = (body ?? {}) as Record<string, unknown>;
  const given = (["prompt", "prompts", "messages"] as const).filter((k) => b[k] !== undefined);
  if (given.length === 0) return { message: "give one of prompt, prompts or messages", field: "prompt" };
  return { message: `give only one of prompt, prompts or messages (got ${given.join(", ")})`, field: given[1]! };
}

/** A value as the client wrote it: JSON, except numbers JSON cannot carry (1e400 parses to Infinity). */
function shown(v: unknown): string {
  return typeof v === "number" && !Number.isFinite(v) ? `${v} (out of the range of a double)` : JSON.stringify(v);
}

export function validationError(err: FastifyError, body: unknown): { message: string; field: string } {
  const errors = err.validation!;
  const isObject = body !== null && typeof body === "object" && !Array.isArray(body);
  if (!isObject) return { message: "request body must be a JSON object", field: "body" };
  // The body's oneOf (exactly one of prompt / prompts / messages) failed: ajv lists its branches' errors too.
  if (errors.some((e) => e.schemaPath.startsWith("#/oneOf"))) return inputFormError(body);
  const v = errors[0]!;
  const params = v.params as Record<string, unknown>;
  const missing = typeof params.missingProperty === "string" ? params.missingProperty : undefined;
  const field = fieldFromPointer(v.instancePath, missing);
  let message = missing ? "is required" : v.message ?? "is invalid";
  if (Array.isArray(params.allowedValues)) message += ` (${params.allowedValues.join(", ")})`;
  if (field === "body" && v.keyword === "type") message = "request body must be a JSON object";
  if (field === "quantile") {
    // One message for every way q can be wrong, stating LengthPredictor's range.
    const got = (body as { quantile?: unknown } | null)?.quantile;
    return { message: `quantile must be a number in (0, 1), got ${shown(got)}`, field };
  }
  return { message: field === "body" ? message : `${field} ${message}`, field };
}
