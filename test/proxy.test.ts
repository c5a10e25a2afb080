/**
 * `lenpred proxy` end to end: the official `openai` client → proxy → the stand-in upstream (test/helpers/fake-llm.ts),
 * all on 127.0.0.1. Orders are proven by the upstream's arrival log with a serial upstream, never by timing.
 */
import { spawnSync } from "node:child_process";
import { request } from "node:http";
import { Writable } from "node:stream";
import OpenAI from "openai";
import { Client } from "undici";
import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import type { ProxyObservation, ProxyPredictor } from "../src/proxy/predictor.js";
import { buildProxy, type ProxyOptions } from "../src/proxy/server.js";
import { startFakeLlm, type FakeLlm, type FakeLlmOptions } from "./helpers/fake-llm.js";

/** Predicts "predict=N" from the prompt (else 50), reserves the same; records observations. */
class ScriptedPredictor implements ProxyPredictor {
  readonly name = "scripted";
  observed: ProxyObservation[] = [];
  async predict({ prompt }: { prompt: string }) {
    const m = /predict=(\d+)/.exec(prompt);
    const n = m ? Number(m[1]) : 50;
    return { expectedTokens: n, reserveTokens: n };
  }
  observe(o: ProxyObservation) {
    this.observed.push(o);
  }
}

const promtool = spawnSync("promtool", ["--version"]).status === 0;
if (!promtool) console.warn("test/proxy: promtool not installed (Debian: apt-get install prometheus), skipping the promtool check");

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(o: { upstream?: FakeLlmOptions; proxy?: Partial<ProxyOptions>; predictor?: ProxyPredictor } = {}) {
  const llm = await startFakeLlm(o.upstream);
  cleanups.push(() => llm.close());
  const predictor = o.predictor ?? new ScriptedPredictor();
  const app = await buildProxy({ upstream: llm.url, predictor, countTokens: (t) => t.trim().split(/\s+/).filter(Boolean).length, ...o.proxy });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  cleanups.push(() => app.close());
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "sk-secret-test-key", maxRetries: 0 });
  return { llm, app, url, client, predictor: predictor as ScriptedPredictor };
}

async function metric(url: string, name: string): Promise<string[]> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text.split("\n").filter((l) => l.startsWith(name));
}

/** Wait (event-driven by polling state, not a timing assertion) until `cond` holds. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 2));
}

describe("pass-through", () => {
  it("non-streaming chat: answer, usage and Authorization reach their destination; the length is observed for the model", async () => {
    const { client, llm, predictor, url } = await setup();
    const r = await client.chat.completions.create({ model: "m-a", messages: [{ role: "user", content: "hello tokens=7" }] });
    expect(r.choices[0]!.message.content).toBe("w0 w1 w2 w3 w4 w5 w6 ");
    expect(r.usage?.completion_tokens).toBe(7);
    expect(llm.arrivals[0]!.headers.authorization).toBe("Bearer sk-secret-test-key");
    expect(llm.arrivals[0]!.body.max_tokens).toBeUndefined(); // never changed without --cap-max-tokens
    expect(llm.arrivals[0]!.body.priority).toBeUndefined();
    await until(() => predictor.observed.length === 1);
    expect(predictor.observed[0]).toMatchObject({ model: "m-a", prompt: "hello tokens=7", output_tokens: 7, request_id: "fake-1" });
    expect(await metric(url, "lenpred_observations_total")).toContain('lenpred_observations_total{model="m-a"} 1');
  });

  it("streaming chat: the client gets exactly the chunks it asked for (no usage chunk) while the proxy reads the usage", async () => {
    const { client, llm, predictor, url } = await setup();
    const stream = await client.chat.completions.create({ model: "m-b", messages: [{ role: "user", content: "tokens=5" }], stream: true });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("w0 w1 w2 w3 w4 ");
    expect(chunks.every((c) => c.choices.length === 1 && !("usage" in c))).toBe(true);
    expect(llm.arrivals[0]!.body.stream_options).toEqual({ include_usage: true });
    await until(() => predictor.observed.length === 1);
    expect(predictor.observed[0]).toMatchObject({ model: "m-b", output_tokens: 5 });
    const ttft = await metric(url, "lenpred_proxy_ttft_seconds_count");
    expect(ttft).toEqual(["lenpred_proxy_ttft_seconds_count 1"]);
  });

  it("streaming with include_usage asked by the client: the usage chunk is kept", async () => {
    const { client } = await setup();
    const stream = await client.chat.completions.create({
      model: "m", messages: [{ role: "user", content: "tokens=3" }], stream: true, stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage?.completion_tokens).toBe(3);
  });

  it("without usage from the upstream, the streamed answer is counted with the tokenizer", async () => {
    const { client, predictor } = await setup({ upstream: { omitUsage: true } });
    for await (const _ of await client.completions.create({ model: "m-c", prompt: "tokens=9", stream: true })) void _;
    await client.completions.create({ model: "m-c", prompt: "tokens=4" });
    await until(() => predictor.observed.length === 2);
    expect(predictor.observed.map((o) => o.output_tokens).sort()).toEqual([4, 9]);
  });

  it("/v1/models and unknown paths are forwarded as is (status, headers, body)", async () => {
    const { client, url, llm } = await setup();
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["fake-model"]);
    const r = await fetch(`${url}/v1/other?x=1`, { method: "PUT", body: "raw bytes", headers: { "content-type": "text/plain", authorization: "Bearer k2" } });
    expect(r.status).toBe(404);
    expect(r.headers.get("x-upstream")).toBe("fake");
    expect(await r.json()).toEqual({ echo: { method: "PUT", path: "/v1/other?x=1", body: "raw bytes" } });
    expect(llm.received.at(-1)!.headers.authorization).toBe("Bearer k2");
  });

  it("upstream errors are passed through; an unreachable upstream is a 502 in serve's error shape", async () => {
    const { client } = await setup();
    await expect(client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "status=429 please" }] }))
      .rejects.toMatchObject({ status: 429, message: expect.stringContaining("fake upstream error 429") });
    const app = await buildProxy({ upstream: "http://127.0.0.1:1", predictor: new ScriptedPredictor() });
    cleanups.push(() => app.close());
    const r = await app.inject({ method: "POST", url: "/v1/completions", payload: { prompt: "hi" } });
    expect(r.statusCode).toBe(502);
    expect(r.json()).toEqual({ error: { message: expect.stringMatching(/upstream unreachable/), field: null } });
  });

  it("bad bodies get serve's limits and error shapes, without reaching the upstream", async () => {
    const { app, llm } = await setup({ proxy: { limits: { maxPromptChars: 10, maxMessages: 2 } } });
    const post = (url: string, payload: unknown) => app.inject({ method: "POST", url, payload: payload as object });
    let r = await post("/v1/chat/completions", { model: "m" });
    expect([r.statusCode, r.json()]).toEqual([400, { error: { message: "messages is required", field: "messages" } }]);
    r = await post("/v1/chat/completions", { messages: [{ role: "system", content: "be brief" }] });
    expect([r.statusCode, r.json().error.field]).toEqual([400, "messages"]);
    r = await post("/v1/chat/completions", { messages: [{ role: "user", content: "x".repeat(11) }] });
    expect([r.statusCode, r.json().error.field]).toEqual([400, "messages[0].content"]);
    r = await post("/v1/chat/completions", { messages: [1, 2, 3].map(() => ({ role: "user", content: "a" })) });
    expect([r.statusCode, r.json().error.field]).toEqual([400, "messages"]);
    r = await post("/v1/completions", { prompt: [1, 2, 3] });
    expect([r.statusCode, r.json().error.field]).toEqual([400, "prompt"]);
    r = await post("/v1/completions", { prompt: "   " });
    expect([r.statusCode, r.json().error.field]).toEqual([400, "prompt"]);
    r = await app.inject({ method: "POST", url: "/v1/completions", payload: "prompt=hi", headers: { "content-type": "text/plain" } });
    expect(r.statusCode).toBe(415);
    expect(llm.received).toEqual([]);
  });

  it("Authorization is never logged", async () => {
    const lines: string[] = [];
    const stream = new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } });
    const { client } = await setup({ proxy: { logger: { level: "trace", stream } } });
    await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "tokens=2" }] });
    await expect(client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "status=500" }] })).rejects.toBeTruthy();
    expect(lines.join("")).not.toContain("sk-secret-test-key");
  });
});

describe("admission", () => {
  /** Fill the proxy's queue behind one held request, then let the serial upstream run; returns its service order. */
  async function order(policy: "fcfs" | "sjf" | "s3", extra: Partial<ProxyOptions> = {}) {
    const { client, llm, app } = await setup({ upstream: { concurrency: 1 }, proxy: { policy, maxConcurrency: 1, kvBudgetTokens: 10_000, ...extra } });
    llm.hold();
    const first = client.completions.create({ model: "m", prompt: "first predict=1 tokens=1" });
    await until(() => app.lenpredProxy.scheduler.inFlight === 1 && llm.waiting === 1);
    const rest = [["a", 400], ["b", 20], ["c", 900], ["d", 5], ["e", 60]].map(([n, p]) =>
      client.completions.create({ model: "m", prompt: `${n} predict=${p} tokens=1` }));
    await until(() => app.lenpredProxy.scheduler.queued === 5);
    llm.release();
    await Promise.all([first, ...rest]);
    return { order: llm.arrivals.map((a) => a.prompt.split(" ")[0]), llm };
  }

  it("fcfs sends requests upstream in arrival order", async () => {
    expect((await order("fcfs")).order).toEqual(["first", "a", "b", "c", "d", "e"]);
  });

  it("sjf sends the shortest predicted first (the serial upstream's arrival log)", async () => {
    expect((await order("sjf")).order).toEqual(["first", "d", "b", "e", "a", "c"]);
  });

  it("s3 uses the sjf order; --upstream-kind vllm sends the predicted rank as vLLM's priority (lower = earlier)", async () => {
    const { order: o, llm } = await order("s3", { upstreamKind: "vllm" });
    expect(o).toEqual(["first", "d", "b", "e", "a", "c"]);
    expect(llm.arrivals.map((a) => a.body.priority)).toEqual([1, 5, 20, 60, 400, 900]);
  });

  it("--cap-max-tokens caps max_tokens at the reservation (and only then)", async () => {
    const { client, llm } = await setup({ proxy: { capMaxTokens: true } });
    await client.completions.create({ model: "m", prompt: "predict=30 tokens=1" });
    await client.completions.create({ model: "m", prompt: "predict=30 tokens=1", max_tokens: 10 });
    expect(llm.arrivals.map((a) => a.body.max_tokens)).toEqual([30, 10]);
  });

  it("a full queue answers 503 with Retry-After in serve's error shape", async () => {
    const { client, llm, app, url } = await setup({ upstream: { concurrency: 1 }, proxy: { maxConcurrency: 1, maxQueue: 1 } });
    llm.hold();
    const held = [client.completions.create({ model: "m", prompt: "x" }), client.completions.create({ model: "m", prompt: "y" })];
    await until(() => app.lenpredProxy.scheduler.queued === 1);
    const r = await fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "z" }) });
    expect(r.status).toBe(503);
    expect(r.headers.get("retry-after")).toBe("1");
    expect(await r.json()).toEqual({ error: { message: expect.stringMatching(/queue is full/), field: null } });
    llm.release();
    await Promise.all(held);
  });
});

describe("cancellation and drain", () => {
  it("a client that disconnects mid-stream cancels the upstream request and frees its slot", async () => {
    const { client, llm, app, url } = await setup({ upstream: { msPerToken: 5, concurrency: 1 }, proxy: { maxConcurrency: 1 } });
    const cancelled = llm.cancelledOnce();
    const stream = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "tokens=100000" }], stream: true });
    let n = 0;
    for await (const _ of stream) if (++n === 3) break; // breaking out aborts the HTTP request
    expect((await cancelled).tokens).toBe(100000);
    await until(() => app.lenpredProxy.scheduler.inFlight === 0);
    expect(await metric(url, "lenpred_proxy_client_cancelled_total")).toContain('lenpred_proxy_client_cancelled_total{stage="in_flight"} 1');
    // The slot is free: the next request goes through.
    const r = await client.completions.create({ model: "m", prompt: "tokens=2" });
    expect(r.choices[0]!.text).toBe("w0 w1 ");
  });

  it("backpressure: a client that stops reading stalls the upstream instead of filling the proxy's memory", async () => {
    const { llm, url } = await setup({ upstream: { concurrency: 1 } });
    const tokens = 1_000_000; // ≈ 100 MB of SSE if nothing pushed back
    const req = request(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" } });
    req.on("response", (res) => res.pause()); // read nothing
    req.on("error", () => undefined);
    req.end(JSON.stringify({ model: "m", prompt: `tokens=${tokens}`, stream: true }));
    await llm.started(1);
    const a = llm.arrivals[0]!;
    // Wait until the upstream has stopped making progress (blocked on 'drain'), or has finished.
    let last = -1;
    let still = 0;
    while (a.finishedAt === undefined && still < 5) {
      await new Promise((r) => setTimeout(r, 20));
      still = a.waitingDrain && a.sentBytes === last ? still + 1 : 0;
      last = a.sentBytes;
    }
    expect(a.finishedAt).toBeUndefined();
    expect(a.sentBytes).toBeLessThan(32 << 20);
    req.destroy();
  });

  it("a client that gives up while its prediction runs never reaches the upstream and holds no slot", async () => {
    let started!: () => void;
    const predicting = new Promise<void>((r) => (started = r));
    let finish!: () => void;
    const gate = new Promise<void>((r) => (finish = r));
    const slow: ProxyPredictor = { name: "slow", predict: async ({ prompt }) => {
      if (prompt === "slow") {
        started();
        await gate;
      }
      return { expectedTokens: 1, reserveTokens: 1 };
    } };
    const { client, llm, app, url } = await setup({ predictor: slow, proxy: { maxConcurrency: 1 } });
    const ac = new AbortController();
    const gone = client.completions.create({ model: "m", prompt: "slow" }, { signal: ac.signal });
    await predicting;
    ac.abort();
    await expect(gone).rejects.toThrow();
    while (!(await metric(url, "lenpred_proxy_client_cancelled_total")).includes('lenpred_proxy_client_cancelled_total{stage="predicting"} 1')) {
      await new Promise((r) => setTimeout(r, 5));
    }
    finish();
    const r = await client.completions.create({ model: "m", prompt: "after tokens=1" });
    expect(r.choices[0]!.text).toBe("w0 ");
    expect(app.lenpredProxy.scheduler.inFlight).toBe(0);
    expect(llm.arrivals.map((a) => a.prompt)).toEqual(["after tokens=1"]);
  });

  it("a client that gives up while queued leaves the queue and never reaches the upstream", async () => {
    const { client, llm, app } = await setup({ upstream: { concurrency: 1 }, proxy: { maxConcurrency: 1 } });
    llm.hold();
    const first = client.completions.create({ model: "m", prompt: "first" });
    await until(() => app.lenpredProxy.scheduler.inFlight === 1);
    const ac = new AbortController();
    const gone = client.completions.create({ model: "m", prompt: "gone" }, { signal: ac.signal });
    await until(() => app.lenpredProxy.scheduler.queued === 1);
    ac.abort();
    await expect(gone).rejects.toThrow();
    await until(() => app.lenpredProxy.scheduler.queued === 0);
    llm.release();
    await first;
    await client.completions.create({ model: "m", prompt: "after" });
    expect(llm.arrivals.map((a) => a.prompt)).toEqual(["first", "after"]);
  });

  it("close() refuses new connections and answers the queued and in-flight requests first", async () => {
    const { client, llm, app, url } = await setup({ upstream: { concurrency: 1 }, proxy: { maxConcurrency: 1 } });
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    llm.hold();
    const inflight = client.completions.create({ model: "m", prompt: "one tokens=2" });
    await until(() => app.lenpredProxy.scheduler.inFlight === 1);
    const queued = client.completions.create({ model: "m", prompt: "two tokens=2" });
    await until(() => app.lenpredProxy.scheduler.queued === 1);
    const closing = app.close();
    await until(() => app.lenpredProxy.status === "closing");
    // New connections are refused while the queued and in-flight requests are still being answered.
    await expect(new Client(url).request({ method: "GET", path: "/readyz" })).rejects.toMatchObject({ code: "ECONNREFUSED" });
    llm.release();
    const [a, b] = await Promise.all([inflight, queued]);
    expect([a.choices[0]!.text, b.choices[0]!.text]).toEqual(["w0 w1 ", "w0 w1 "]);
    await closing;
  });
});

describe("predictor plumbing", () => {
  it("the LengthPredictor adapter: expectedTokens as predicted, reserveTokens = upperBound, observe a no-op", async () => {
    const { fromLengthPredictor } = await import("../src/proxy/predictor.js");
    const { LengthPredictor } = await import("../src/predictor/length-predictor.js");
    const { uniformBuckets } = await import("../src/data/buckets.js");
    const inner = {
      name: "fixed", buckets: uniformBuckets(512, 4),
      async predict(p: string) { return (await this.predictBatch([p]))[0]!; },
      async predictBatch(ps: string[]) { return ps.map((p) => ({ bucket: p.length > 5 ? 2 : 0, upperBound: p.length > 5 ? 384 : 128, expectedTokens: p.length * 10 })); },
    };
    const a = fromLengthPredictor(LengthPredictor.from(inner));
    expect(await Promise.all([a.predict({ prompt: "abc" }), a.predict({ model: "x", prompt: "abcdefgh" })]))
      .toEqual([{ expectedTokens: 30, reserveTokens: 128 }, { expectedTokens: 80, reserveTokens: 384 }]);
    expect(a.observe!({ prompt: "abc", output_tokens: 5 })).toBeUndefined();
    await a.close!();
  });

  it("fromLearner: per-model predictions with the learner's reserveTokens; the proxy's observations reach learner.observe", async () => {
    const { fromLearner } = await import("../src/proxy/predictor.js");
    const calls: unknown[] = [];
    const observed: ProxyObservation[][] = [];
    const learner = {
      async predictBatch(prompts: string[], o?: { model?: string; quantile?: number }) {
        calls.push([prompts, o]);
        return prompts.map(() => ({ expectedTokens: o?.model === "big" ? 300 : 30, reserveTokens: o?.model === "big" ? 400 : 40 }));
      },
      observe(obs: ProxyObservation[]) { observed.push(obs); },
    };
    const { client } = await setup({ predictor: fromLearner(learner, { quantile: 0.9 }) });
    await client.chat.completions.create({ model: "big", messages: [{ role: "user", content: "q tokens=6" }] });
    expect(calls).toEqual([[["q tokens=6"], { model: "big", quantile: 0.9 }]]);
    await until(() => observed.length === 1);
    expect(observed[0]).toEqual([{ model: "big", prompt: "q tokens=6", output_tokens: 6, prompt_tokens: 2, request_id: "fake-1" }]);
  });

  it("the real OnlineLearner behind fromLearner: the proxy's observations are learned per model", async () => {
    const { fromLearner } = await import("../src/proxy/predictor.js");
    const { OnlineLearner } = await import("../src/online/learner.js");
    const { trainMedian } = await import("../src/baselines/constant.js");
    const { uniformBuckets } = await import("../src/data/buckets.js");
    const scheme = { buckets: uniformBuckets(512, 4), tokenizer: "llama", specialTokens: false, label: "t", template: "raw" };
    const base = trainMedian([10, 20, 30].map((n, i) => ({ id: i, prompt: `p${i}`, prompt_tokens: 1, output_tokens: n, output_length_bucket: 0 })), scheme);
    const learner = new OnlineLearner(base);
    const { client } = await setup({ predictor: fromLearner(learner) });
    for (const n of [40, 50, 60]) await client.completions.create({ model: "llm-x", prompt: `q${n} tokens=${n}` });
    await until(() => learner.stats().some((s) => s.model === "llm-x" && s.observations === 3));
    const [p] = await learner.predictBatch(["anything"], { model: "llm-x" });
    expect(p!.observations).toBe(3);
  });

  it("/readyz is 503 while the predictor loads and after it failed; LLM requests get 503 then", async () => {
    let resolveP!: (p: ProxyPredictor) => void;
    const llm = await startFakeLlm();
    cleanups.push(() => llm.close());
    const app = await buildProxy({ upstream: llm.url, predictor: new Promise<ProxyPredictor>((r) => (resolveP = r)) });
    cleanups.push(() => app.close());
    let r = await app.inject({ method: "GET", url: "/readyz" });
    expect([r.statusCode, r.json()]).toEqual([503, { status: "loading" }]);
    r = await app.inject({ method: "POST", url: "/v1/completions", payload: { prompt: "hi" } });
    expect([r.statusCode, r.json().error.message]).toEqual([503, "predictor is loading"]);
    expect((await app.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
    resolveP(new ScriptedPredictor());
    await app.lenpredProxy.ready;
    expect((await app.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(200);
    const failed = await buildProxy({ upstream: llm.url, predictor: Promise.reject(new Error("no model")) });
    cleanups.push(() => failed.close());
    await expect(failed.lenpredProxy.ready).rejects.toThrow("no model");
    expect((await failed.inject({ method: "GET", url: "/readyz" })).json()).toEqual({ status: "failed" });
  });

  it("a predictor that throws does not take the LLM down: the request is forwarded, scheduled as a long one, and counted", async () => {
    const broken: ProxyPredictor = { name: "broken", predict: async () => { throw new Error("boom"); } };
    const { client, url } = await setup({ predictor: broken });
    const r = await client.completions.create({ model: "m", prompt: "tokens=2" });
    expect(r.choices[0]!.text).toBe("w0 w1 ");
    expect(await metric(url, "lenpred_proxy_prediction_failures_total")).toEqual(["lenpred_proxy_prediction_failures_total 1"]);
  });

  it("s3: a streamed answer that outgrows its reservation gets it extended, and that is counted", async () => {
    const { client, app, url } = await setup({ proxy: { policy: "s3", kvBudgetTokens: 1000 } });
    for await (const _ of await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "predict=4 tokens=20" }], stream: true })) void _;
    // 4 reserved → 8 → 16 → 32 (doubling): three extensions, all released at the end.
    expect(app.lenpredProxy.scheduler.extensions).toBe(3);
    expect(await metric(url, "lenpred_proxy_reservation_extensions_total")).toEqual(["lenpred_proxy_reservation_extensions_total 3"]);
    await until(() => app.lenpredProxy.scheduler.inFlight === 0);
    expect(app.lenpredProxy.scheduler.reservedTokens).toBe(0);
  });

  it.skipIf(!promtool)("/metrics passes promtool check metrics, process metrics included (skipped when promtool is absent)", async () => {
    const { client, url } = await setup({ proxy: { processMetrics: true } });
    for await (const _ of await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "tokens=3" }], stream: true })) void _;
    await client.completions.create({ model: "m", prompt: "tokens=2" });
    await client.models.list();
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toContain('lenpred_observations_total{model="m"} 2');
    const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});
