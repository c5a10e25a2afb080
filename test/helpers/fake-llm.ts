/**
 * A stand-in OpenAI-compatible LLM server for the proxy tests and bench (127.0.0.1 only).
 *
 * It answers /v1/chat/completions and /v1/completions with a chosen number of tokens ("w0 w1 ..."), one token
 * every `msPerToken` ms on an absolute schedule (no drift), streamed (SSE, with `stream_options.include_usage`
 * honoured as OpenAI does) or not; it serves at most `concurrency` requests at once, the others waiting in
 * FIFO order, like a serial backend. Everything it receives is logged in `arrivals` (order of service start),
 * so a test can prove an order without timing. `hold()` makes it accept requests but not answer until
 * `release()`: tests use it to fill the proxy's queue deterministically.
 *
 * Prompt conventions: "tokens=N" anywhere in the prompt sets the answer length (default `defaultTokens`);
 * "status=NNN" makes it answer that HTTP status with an OpenAI error body.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeLlmOptions {
  msPerToken?: number;
  concurrency?: number;
  defaultTokens?: number;
  /** Leave `usage` out of every response (to test counting with the tokenizer). */
  omitUsage?: boolean;
  /** Answer length for a request (overrides the "tokens=N" convention). */
  tokensFor?: (prompt: string, body: Record<string, unknown>) => number;
}

export interface Arrival {
  path: string;
  prompt: string;
  body: Record<string, unknown>;
  headers: IncomingMessage["headers"];
  tokens: number;
  receivedAt: number;
  startedAt?: number;
  finishedAt?: number;
  cancelled?: boolean;
  /** Streams: bytes written so far, and whether the server is waiting for 'drain' (its client is not reading). */
  sentBytes: number;
  waitingDrain: boolean;
}

export interface FakeLlm {
  url: string;
  /** Requests in the order the server started serving them. */
  arrivals: Arrival[];
  /** Every request received, in arrival order (including /v1/models and others). */
  received: Array<{ method: string; path: string; headers: IncomingMessage["headers"] }>;
  /** Requests waiting for a free slot. */
  readonly waiting: number;
  hold(): void;
  release(): void;
  /** Resolves when `n` LLM requests have started being served. */
  started(n: number): Promise<void>;
  /** Resolves when some request was cancelled by its client. */
  cancelledOnce(): Promise<Arrival>;
  close(): Promise<void>;
}

const sleepUntil = (t: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, t - performance.now())));

function promptOf(body: Record<string, unknown>): string {
  if (typeof body.prompt === "string") return body.prompt;
  if (Array.isArray(body.prompt)) return body.prompt.join("\n");
  const msgs = Array.isArray(body.messages) ? (body.messages as Array<{ role?: string; content?: unknown }>) : [];
  const last = [...msgs].reverse().find((m) => m.role === "user");
  return typeof last?.content === "string" ? last.content : "";
}

export async function startFakeLlm(opts: FakeLlmOptions = {}): Promise<FakeLlm> {
  const msPerToken = opts.msPerToken ?? 0;
  const concurrency = opts.concurrency ?? 1;
  const arrivals: Arrival[] = [];
  const received: FakeLlm["received"] = [];
  const queue: Array<() => void> = [];
  let active = 0;
  let held = false;
  const startWaiters: Array<{ n: number; resolve: () => void }> = [];
  const cancelWaiters: Array<(a: Arrival) => void> = [];

  const acquire = () => new Promise<void>((resolve) => {
    if (!held && active < concurrency) {
      active++;
      resolve();
    } else queue.push(() => {
      active++;
      resolve();
    });
  });
  const pump = () => {
    while (!held && active < concurrency && queue.length > 0) queue.shift()!();
  };
  const releaseSlot = () => {
    active--;
    pump();
  };

  async function serveLlm(req: IncomingMessage, res: ServerResponse, path: string, body: Record<string, unknown>) {
    const prompt = promptOf(body);
    const status = /status=(\d{3})/.exec(prompt);
    if (status) {
      res.writeHead(Number(status[1]), { "content-type": "application/json", "x-upstream": "fake" });
      res.end(JSON.stringify({ error: { message: `fake upstream error ${status[1]}`, type: "invalid_request_error", code: null } }));
      return;
    }
    const m = /tokens=(\d+)/.exec(prompt);
    const tokens = opts.tokensFor ? opts.tokensFor(prompt, body) : m ? Number(m[1]) : opts.defaultTokens ?? 8;
    const a: Arrival = { path, prompt, body, headers: req.headers, tokens, receivedAt: performance.now(), sentBytes: 0, waitingDrain: false };
    let gone = false;
    res.once("close", () => {
      if (!res.writableFinished) {
        gone = true;
        a.cancelled = true;
        for (const w of cancelWaiters.splice(0)) w(a);
      }
    });
    await acquire();
    if (gone) {
      releaseSlot();
      return;
    }
    a.startedAt = performance.now();
    arrivals.push(a);
    for (const w of [...startWaiters]) {
      if (arrivals.length >= w.n) {
        startWaiters.splice(startWaiters.indexOf(w), 1);
        w.resolve();
      }
    }
    const chat = path === "/v1/chat/completions";
    const id = `fake-${arrivals.length}`;
    const model = typeof body.model === "string" ? body.model : "fake";
    const usage = { prompt_tokens: prompt.split(/\s+/).length, completion_tokens: tokens, total_tokens: prompt.split(/\s+/).length + tokens };
    const word = (i: number) => `w${i} `;
    try {
      if (body.stream === true) {
        const so = body.stream_options as { include_usage?: boolean } | undefined;
        const withUsage = so?.include_usage === true && !opts.omitUsage;
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
        const send = (o: Record<string, unknown>) => {
          const frame = `data: ${JSON.stringify(withUsage ? { ...o, usage: o.usage ?? null } : o)}\n\n`;
          a.sentBytes += frame.length;
          return res.write(frame);
        };
        const chunk = (choice: Record<string, unknown>) => ({ id, object: chat ? "chat.completion.chunk" : "text_completion", created: 1, model, choices: [{ index: 0, ...choice }] });
        if (chat) send(chunk({ delta: { role: "assistant", content: "" }, finish_reason: null }));
        // Token i is due at start + (i + 1) × msPerToken; every due token is sent at each wake-up, so coarse
        // timers do not slow the rate down. A full socket buffer waits for 'drain' (backpressure).
        let i = 0;
        while (i < tokens && !gone) {
          const due = msPerToken > 0 ? Math.min(tokens, Math.floor((performance.now() - a.startedAt) / msPerToken)) : tokens;
          if (due <= i) {
            await sleepUntil(a.startedAt + (i + 1) * msPerToken);
            continue;
          }
          while (i < due && !gone) {
            const ok = send(chunk(chat ? { delta: { content: word(i) }, finish_reason: null } : { text: word(i), finish_reason: null }));
            i++;
            if (!ok) {
              a.waitingDrain = true;
              await new Promise((r) => res.once("drain", r).once("close", r));
              a.waitingDrain = false;
            }
          }
        }
        if (!gone) {
          send(chunk(chat ? { delta: {}, finish_reason: "length" } : { text: "", finish_reason: "length" }));
          if (withUsage) send({ id, object: chat ? "chat.completion.chunk" : "text_completion", created: 1, model, choices: [], usage });
          res.end("data: [DONE]\n\n");
        }
      } else {
        await sleepUntil(a.startedAt + tokens * msPerToken);
        if (!gone) {
          const text = Array.from({ length: tokens }, (_, i) => word(i)).join("");
          const choice = chat ? { index: 0, message: { role: "assistant", content: text }, finish_reason: "length" } : { index: 0, text, finish_reason: "length" };
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ id, object: chat ? "chat.completion" : "text_completion", created: 1, model, choices: [choice], ...(opts.omitUsage ? {} : { usage }) }));
        }
      }
    } finally {
      a.finishedAt = performance.now();
      releaseSlot();
    }
  }

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    received.push({ method: req.method ?? "", path, headers: req.headers });
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      if (path === "/v1/models" && req.method === "GET") {
        res.writeHead(200, { "content-type": "application/json", "x-upstream": "fake" });
        res.end(JSON.stringify({ object: "list", data: [{ id: "fake-model", object: "model", created: 1, owned_by: "test" }] }));
        return;
      }
      if (req.method === "POST" && (path === "/v1/chat/completions" || path === "/v1/completions")) {
        let body: Record<string, unknown>;
        try {
          body = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          res.writeHead(400, { "content-type": "application/json" });
          res.end(JSON.stringify({ error: { message: "bad json" } }));
          return;
        }
        void serveLlm(req, res, path, body);
        return;
      }
      // Anything else: echo, so pass-through can be checked byte for byte.
      res.writeHead(404, { "content-type": "application/json", "x-upstream": "fake" });
      res.end(JSON.stringify({ echo: { method: req.method, path: req.url, body: raw } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    arrivals,
    received,
    get waiting() {
      return queue.length;
    },
    hold() {
      held = true;
    },
    release() {
      held = false;
      pump();
    },
    started(n) {
      if (arrivals.length >= n) return Promise.resolve();
      return new Promise((resolve) => startWaiters.push({ n, resolve }));
    },
    cancelledOnce() {
      return new Promise((resolve) => cancelWaiters.push(resolve));
    },
    close() {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
