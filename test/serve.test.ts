/**
 * `lenpred serve` over real HTTP on a loopback port: the bad-input table, batching under concurrency,
 * backpressure, readiness, metrics, OpenAPI, and a 1,000-request fuzz.
 */
import SwaggerParser from "@apidevtools/swagger-parser";
import type { FastifyInstance } from "fastify";
import { afterAll, describe, expect, it } from "vitest";
import { bucketOf, uniformBuckets, type BucketScheme } from "../src/data/buckets.js";
import type { Prediction, Predictor } from "../src/model/prediction.js";
import { buildServer, type ServeOptions } from "../src/serve/server.js";
import { runFuzz } from "../bench/lib/serve-fuzz.js";

/**
 * Test predictor: expectedTokens = the prompt's length in code points (so a response shows which prompt the
 * server extracted), bucket = its bucket, probabilities = 0.6 on that bucket and 0.4 on the next one.
 * Optionally holds every call until `release()`, which makes batch formation deterministic.
 */
class CountingPredictor implements Predictor {
  readonly name = "counting";
  readonly sizes: number[] = [];
  gated = false;
  private gates: Array<() => void> = [];
  constructor(readonly buckets: BucketScheme = uniformBuckets(100, 4), private readonly withProbabilities = true) {}
  static expected(scheme: BucketScheme, prompt: string): Prediction {
    const len = [...prompt].length;
    const bucket = bucketOf(scheme, len);
    const n = scheme.edges.length;
    const probabilities = Array.from({ length: n }, (_, b) => (b === bucket ? (bucket === n - 1 ? 1 : 0.6) : b === bucket + 1 ? 0.4 : 0));
    return { bucket, upperBound: scheme.edges[bucket]!, expectedTokens: len, probabilities };
  }
  async predict(p: string) {
    return (await this.predictBatch([p]))[0]!;
  }
  async predictBatch(prompts: string[]): Promise<Prediction[]> {
    this.sizes.push(prompts.length);
    if (this.gated) await new Promise<void>((r) => this.gates.push(r));
    return prompts.map((p) => {
      const e = CountingPredictor.expected(this.buckets, p);
      if (this.withProbabilities) return e;
      const { probabilities: _, ...rest } = e;
      return rest;
    });
  }
  get waiting(): number {
    return this.gates.length;
  }
  release(): void {
    for (const g of this.gates.splice(0)) g();
  }
}

const apps: FastifyInstance[] = [];
async function start(opts: Partial<ServeOptions> & { predictor?: ServeOptions["predictor"] } = {}) {
  const predictor = opts.predictor ?? new CountingPredictor();
  const app = await buildServer({ maxWaitMs: 1, ...opts, predictor });
  apps.push(app);
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  return { app, url, predictor };
}
afterAll(async () => {
  for (const a of apps) await a.close();
});

async function post(url: string, body: unknown, contentType = "application/json") {
  const res = await fetch(url + "/v1/predict", {
    method: "POST",
    headers: contentType ? { "content-type": contentType } : {},
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: text.startsWith("{") ? JSON.parse(text) : undefined };
}

const tick = () => new Promise((r) => setTimeout(r, 5));
async function until(cond: () => boolean) {
  for (let i = 0; i < 2000 && !cond(); i++) await tick();
  expect(cond()).toBe(true);
}

describe("POST /v1/predict", () => {
  const limits = { maxPrompts: 4, maxPromptChars: 50, maxMessages: 3, bodyBytes: 4096 };
  let url = "";
  let scheme: BucketScheme;
  it("starts", async () => {
    const s = await start({ limits, maxQueue: 16 });
    url = s.url;
    scheme = (s.predictor as CountingPredictor).buckets;
  });

  it("predicts one prompt", async () => {
    const r = await post(url, { prompt: "x".repeat(30) });
    expect(r.status).toBe(200);
    expect(r.json).toEqual(CountingPredictor.expected(scheme, "x".repeat(30)));
    expect(r.json).toMatchObject({ bucket: 1, upperBound: 50, expectedTokens: 30 });
  });

  it("predicts several prompts in order", async () => {
    const prompts = ["a", "é🙂", "y".repeat(50), "?"];
    const r = await post(url, { prompts });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ predictions: prompts.map((p) => CountingPredictor.expected(scheme, p)) });
    expect(r.json.predictions[1].expectedTokens).toBe(2); // code points, not UTF-16 units
  });

  it("predicts an OpenAI chat body from its last user message and ignores other OpenAI fields", async () => {
    const r = await post(url, {
      model: "gpt-4o", temperature: 0.2, max_tokens: 512, stream: false,
      messages: [
        { role: "user", content: "an earlier, longer question" },
        { role: "assistant", content: "reply" },
        { role: "user", content: [{ type: "text", text: "abc" }, { type: "image_url", image_url: { url: "x" } }, { type: "text", text: "de" }] },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.json.expectedTokens).toBe("abc\nde".length);
  });

  it("applies quantile from the probabilities", async () => {
    // 30 chars → bucket 1 with p = 0.6, bucket 2 with 0.4
    expect((await post(url, { prompt: "x".repeat(30), quantile: 0.5 })).json).toMatchObject({ bucket: 1, upperBound: 50, expectedTokens: 30 });
    expect((await post(url, { prompt: "x".repeat(30), quantile: 0.6 })).json).toMatchObject({ bucket: 1, upperBound: 50 });
    expect((await post(url, { prompt: "x".repeat(30), quantile: 0.61 })).json).toMatchObject({ bucket: 2, upperBound: 75, expectedTokens: 30 });
    const batch = await post(url, { prompts: ["x", "x".repeat(30)], quantile: 0.9 });
    expect(batch.json.predictions.map((p: Prediction) => p.bucket)).toEqual([1, 2]);
  });

  const big = "z".repeat(51);
  const badInputs: Array<[string, unknown, number, string | null, string?]> = [
    ["empty object", {}, 400, "prompt"],
    ["prompt is a number", { prompt: 5 }, 400, "prompt"],
    ["prompt is null", { prompt: null }, 400, "prompt"],
    ["prompt is an array", { prompt: ["a"] }, 400, "prompt"],
    ["prompt too long", { prompt: big }, 400, "prompt"],
    ["prompts empty", { prompts: [] }, 400, "prompts"],
    ["prompts is a string", { prompts: "a" }, 400, "prompts"],
    ["prompts has a number", { prompts: ["a", 1] }, 400, "prompts[1]"],
    ["empty prompt", { prompt: "" }, 400, "prompt"],
    ["blank prompt among prompts", { prompts: ["ok", " \n\t"] }, 400, "prompts[1]"],
    ["too many prompts", { prompts: ["a", "b", "c", "d", "e"] }, 400, "prompts"],
    ["one prompt too long", { prompts: ["ok", big] }, 400, "prompts[1]"],
    ["prompt and prompts", { prompt: "a", prompts: ["b"] }, 400, "prompts"],
    ["prompt and messages", { prompt: "a", messages: [{ role: "user", content: "b" }] }, 400, "messages"],
    ["messages empty", { messages: [] }, 400, "messages"],
    ["messages is a string", { messages: "hi" }, 400, "messages"],
    ["too many messages", { messages: Array(4).fill({ role: "user", content: "a" }) }, 400, "messages"],
    ["message not an object", { messages: [{ role: "user", content: "x" }, "oops"] }, 400, "messages[1]"],
    ["message without role", { messages: [{ content: "x" }] }, 400, "messages[0].role"],
    ["unknown role", { messages: [{ role: "robot", content: "x" }] }, 400, "messages[0].role"],
    ["content is a number", { messages: [{ role: "user", content: 5 }] }, 400, "messages[0].content"],
    ["content too long", { messages: [{ role: "user", content: big }] }, 400, "messages[0].content"],
    ["part without type", { messages: [{ role: "user", content: [{ text: "x" }] }] }, 400, "messages[0].content[0].type"],
    ["part text is a number", { messages: [{ role: "user", content: [{ type: "text", text: 5 }] }] }, 400, "messages[0].content[0].text"],
    ["joined parts too long", { messages: [{ role: "user", content: [{ type: "text", text: "a".repeat(30) }, { type: "text", text: "b".repeat(30) }] }] }, 400, "messages[0].content"],
    ["user message without text", { messages: [{ role: "user", content: null }] }, 400, "messages[0].content"],
    ["no user message", { messages: [{ role: "assistant", content: "x" }] }, 400, "messages"],
    ["quantile 0", { prompt: "a", quantile: 0 }, 400, "quantile"],
    ["quantile above 1", { prompt: "a", quantile: 1.5 }, 400, "quantile"],
    ["quantile 1 (LengthPredictor needs q < 1)", { prompt: "a", quantile: 1 }, 400, "quantile"],
    ["quantile negative", { prompt: "a", quantile: -0.5 }, 400, "quantile"],
    ["quantile as a string", { prompt: "a", quantile: "0.5" }, 400, "quantile"],
    ["quantile null", { prompt: "a", quantile: null }, 400, "quantile"],
    ["model is a number", { prompt: "a", model: 5 }, 400, "model"],
    ["body null", "null", 400, "body"],
    ["body an array", "[]", 400, "body"],
    ["body a number", "5", 400, "body"],
    ["body a string", '"prompt"', 400, "body"],
    ["broken JSON", '{"prompt": "a"', 400, null],
    ["empty body", "", 400, null],
    ["text/plain", "hello", 415, null, "text/plain"],
    ["form body", "prompt=a", 415, null, "application/x-www-form-urlencoded"],
    ["body over the limit", JSON.stringify({ prompt: "x".repeat(5000) }), 413, null],
  ];
  it.each(badInputs)("rejects %s", async (_name, body, status, field, contentType) => {
    const r = await post(url, body, contentType);
    expect(r.status).toBe(status);
    expect(r.headers.get("content-type")).toMatch(/^application\/json/);
    expect(r.json.error.field).toBe(field);
    expect(typeof r.json.error.message).toBe("string");
    expect(r.json.error.message.length).toBeGreaterThan(5);
    if (field && field !== "body") expect(r.json.error.message).toContain(field);
  });

  it("states LengthPredictor's quantile range, and the value it got, in the error", async () => {
    for (const q of [1, 0, 1.5, "0.5"]) {
      const r = await post(url, { prompt: "a", quantile: q });
      expect(r.json.error).toEqual({ field: "quantile", message: `quantile must be a number in (0, 1), got ${JSON.stringify(q)}` });
    }
  });

  it("answers wrong methods with 405 + Allow and unknown paths with 404", async () => {
    const get = await fetch(url + "/v1/predict");
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    expect((await get.json()).error.field).toBeNull();
    const del = await fetch(url + "/healthz", { method: "DELETE" });
    expect(del.status).toBe(405);
    const nf = await fetch(url + "/v2/predict", { method: "POST" });
    expect(nf.status).toBe(404);
    expect((await nf.json()).error.message).toContain("/v2/predict");
  });

  it("is still healthy after the bad inputs", async () => {
    expect((await post(url, { prompt: "abc" })).json.expectedTokens).toBe(3);
  });
});

describe("micro-batching", () => {
  it("coalesces concurrent requests into few predictor calls", async () => {
    const predictor = new CountingPredictor();
    predictor.gated = true;
    const { url, app } = await start({ predictor, maxBatch: 8, maxWaitMs: 20, maxQueue: 100 });
    const prompts = Array.from({ length: 20 }, (_, i) => "p".repeat(i + 1));
    const responses = prompts.map((p) => post(url, { prompt: p }));
    // The first call is held; every other request must end up queued behind it.
    await until(() => predictor.waiting === 1 && predictor.sizes[0]! + app.lenpred.batcher!.depth === 20);
    while (predictor.sizes.reduce((a, b) => a + b, 0) < 20 || predictor.waiting > 0) {
      predictor.release();
      await tick();
    }
    const results = await Promise.all(responses);
    // Each client got the prediction for its own prompt.
    expect(results.map((r) => r.json.expectedTokens)).toEqual(prompts.map((p) => p.length));
    const sizes = predictor.sizes;
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(20);
    expect(Math.max(...sizes)).toBe(8);
    expect(sizes.length).toBeLessThanOrEqual(4); // first call + ceil(19 / 8)
    const metrics = await (await fetch(url + "/metrics")).text();
    expect(metrics).toContain(`lenpred_batch_size_count ${sizes.length}`);
    expect(metrics).toContain("lenpred_batch_size_sum 20");
  });

  it("with maxBatch 1 makes one call per prompt", async () => {
    const predictor = new CountingPredictor();
    const { url } = await start({ predictor, maxBatch: 1, maxWaitMs: 0 });
    await Promise.all(Array.from({ length: 12 }, (_, i) => post(url, { prompt: String(i) })));
    expect(predictor.sizes).toEqual(Array(12).fill(1));
  });

  it("sends 503 + Retry-After when the queue is full, and serves the admitted requests", async () => {
    const predictor = new CountingPredictor();
    predictor.gated = true;
    const { url, app } = await start({ predictor, maxBatch: 1, maxWaitMs: 0, maxQueue: 4, limits: { maxPrompts: 4 } });
    const running = post(url, { prompt: "a" });
    await until(() => predictor.waiting === 1);
    const queued = post(url, { prompts: ["b", "cc", "ddd", "eeee"] });
    await until(() => app.lenpred.batcher!.depth === 4);
    const refused = await post(url, { prompt: "e" });
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(refused.json.error.message).toMatch(/queue is full/);
    const gauge = await (await fetch(url + "/metrics")).text();
    expect(gauge).toContain("lenpred_queue_depth 4");
    expect(gauge).toContain('lenpred_rejected_total{reason="queue_full"} 1');
    while (predictor.waiting > 0 || app.lenpred.batcher!.depth > 0) {
      predictor.release();
      await tick();
    }
    expect((await running).json.expectedTokens).toBe(1);
    expect((await queued).json.predictions.map((p: Prediction) => p.expectedTokens)).toEqual([1, 2, 3, 4]);
  });
});

describe("readiness, errors, metrics, OpenAPI", () => {
  it("is live but not ready while the model loads, and ready after", async () => {
    let resolve!: (p: Predictor) => void;
    const { url, app } = await start({ predictor: new Promise<Predictor>((r) => (resolve = r)) });
    expect((await fetch(url + "/healthz")).status).toBe(200);
    const rz = await fetch(url + "/readyz");
    expect(rz.status).toBe(503);
    expect(await rz.json()).toEqual({ status: "loading" });
    const early = await post(url, { prompt: "a" });
    expect(early.status).toBe(503);
    expect(early.headers.get("retry-after")).toBe("1");
    expect((await fetch(url + "/v1/model")).status).toBe(503);
    resolve(new CountingPredictor());
    await app.lenpred.ready;
    expect(await (await fetch(url + "/readyz")).json()).toEqual({ status: "ready" });
    expect((await post(url, { prompt: "ab" })).json.expectedTokens).toBe(2);
    const model = await (await fetch(url + "/v1/model")).json();
    expect(model).toMatchObject({ name: "counting", buckets: { kind: "uniform", edges: [25, 50, 75, 100] }, maxBatch: 32 });
  });

  it("reports a failed model load on /readyz", async () => {
    const { url, app } = await start({ predictor: Promise.reject(new Error("no such model")) });
    await expect(app.lenpred.ready).rejects.toThrow(/no such model/);
    const rz = await fetch(url + "/readyz");
    expect(rz.status).toBe(503);
    expect(await rz.json()).toEqual({ status: "failed" });
    expect((await post(url, { prompt: "a" })).json.error.message).toMatch(/failed to load/);
  });

  it("runs a warm-up prediction before it is ready when asked", async () => {
    const predictor = new CountingPredictor();
    const { app } = await start({ predictor, warmup: true });
    await app.lenpred.ready;
    expect(predictor.sizes).toEqual([1]);
  });

  it("refuses quantile for a predictor without probabilities", async () => {
    const { url } = await start({ predictor: new CountingPredictor(uniformBuckets(100, 4), false) });
    const plain = await post(url, { prompt: "abc" });
    expect(plain.json).toEqual({ bucket: 0, upperBound: 25, expectedTokens: 3 });
    const r = await post(url, { prompt: "abc", quantile: 0.9 });
    expect(r.status).toBe(400);
    expect(r.json.error).toEqual({ field: "quantile", message: expect.stringMatching(/quantile mode needs bucket probabilities.*'counting'/) });
    // The client's mistake, not a failed batch.
    const m = await (await fetch(url + "/metrics")).text();
    expect(m).toContain("lenpred_batch_failures_total 0");
  });

  it("answers 500 with a JSON error when the predictor throws, and keeps serving", async () => {
    let fail = true;
    const predictor: Predictor = {
      name: "flaky", buckets: uniformBuckets(100, 4),
      predict: async () => ({ bucket: 0, upperBound: 25, expectedTokens: 1 }),
      predictBatch: async (ps) => {
        if (fail) throw new Error("boom");
        return ps.map(() => ({ bucket: 0, upperBound: 25, expectedTokens: 1 }));
      },
    };
    const { url } = await start({ predictor });
    const r = await post(url, { prompt: "a" });
    expect(r.status).toBe(500);
    expect(r.json.error.message).toMatch(/internal error/);
    expect(r.text).not.toContain("boom"); // no internals leak
    fail = false;
    expect((await post(url, { prompt: "a" })).status).toBe(200);
    const m = await (await fetch(url + "/metrics")).text();
    expect(m).toContain("lenpred_batch_failures_total 1");
  });

  it("exports request counts and latency on /metrics with route templates as labels", async () => {
    const { url } = await start();
    for (let i = 0; i < 3; i++) await post(url, { prompt: "a" });
    await post(url, { prompt: 1 });
    await fetch(url + "/no/such/" + Math.random());
    const res = await fetch(url + "/metrics");
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const m = await res.text();
    expect(m).toContain('lenpred_http_requests_total{method="POST",route="/v1/predict",status="200"} 3');
    expect(m).toContain('lenpred_http_requests_total{method="POST",route="/v1/predict",status="400"} 1');
    expect(m).toContain('lenpred_http_requests_total{method="GET",route="unmatched",status="404"} 1');
    expect(m).toContain('lenpred_http_request_duration_seconds_count{route="/v1/predict"} 4');
    expect(m).toContain("lenpred_prompts_total 3");
    expect(m).toMatch(/lenpred_queue_depth 0/);
  });

  it("serves an OpenAPI 3 document generated from the route schemas and limits", async () => {
    const { url } = await start({ limits: { maxPrompts: 7 }, maxQueue: 7 });
    const doc = await (await fetch(url + "/openapi.json")).json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual(["/healthz", "/metrics", "/readyz", "/v1/model", "/v1/predict"]);
    const body = doc.paths["/v1/predict"].post.requestBody.content["application/json"].schema;
    expect(Object.keys(body.properties)).toEqual(expect.arrayContaining(["prompt", "prompts", "messages", "quantile", "model"]));
    expect(body.properties.prompts.maxItems).toBe(7);
    expect(doc.paths["/v1/predict"].post.responses).toHaveProperty("503");
  });

  it("serves an OpenAPI document that swagger-parser validates, with operationIds, named schemas, oneOf and Retry-After", async () => {
    const { url } = await start();
    const doc = await (await fetch(url + "/openapi.json")).json();
    // Throws on any schema violation (the 3.0.3 document with numeric exclusiveMinimum failed here).
    await SwaggerParser.validate(structuredClone(doc));
    expect(doc.openapi).toBe("3.1.0");
    const ops = Object.values(doc.paths as Record<string, Record<string, { operationId?: string; responses: Record<string, { headers?: object }> }>>)
      .flatMap((methods) => Object.values(methods));
    expect(ops.length).toBe(5);
    for (const op of ops) expect(op.operationId).toMatch(/^[a-zA-Z]+$/);
    expect(new Set(ops.map((o) => o.operationId)).size).toBe(ops.length);
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(["Prediction", "PredictionList", "Error", "BucketScheme"]));
    const predict = doc.paths["/v1/predict"].post;
    expect(predict.requestBody.content["application/json"].schema.oneOf).toEqual([{ required: ["prompt"] }, { required: ["prompts"] }, { required: ["messages"] }]);
    expect(predict.responses["200"].content["application/json"].schema.anyOf).toEqual([{ $ref: "#/components/schemas/Prediction" }, { $ref: "#/components/schemas/PredictionList" }]);
    for (const path of ["/v1/predict", "/v1/model", "/readyz"]) {
      const r503 = Object.values(doc.paths[path] as Record<string, { responses: Record<string, { headers?: Record<string, unknown> }> }>)[0]!.responses["503"]!;
      expect(r503.headers).toHaveProperty("retry-after");
    }
    expect(predict.responses["400"].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/Error" });
  });

  it("rejects a queue smaller than the prompts one request may carry", async () => {
    await expect(buildServer({ predictor: new CountingPredictor(), maxQueue: 2, limits: { maxPrompts: 3 } })).rejects.toThrow(/maxQueue/);
  });
});

describe("fuzz", () => {
  it("1,000 malformed/random requests: no 5xx except 503, and the server still answers", async () => {
    const limits = { bodyBytes: 32 * 1024, maxPromptChars: 2000 };
    const { url } = await start({ predictor: new CountingPredictor(), limits, maxQueue: 64, maxBatch: 8 });
    const report = await runFuzz({ baseUrl: url, requests: 1000, seed: "serve-test", bodyLimit: limits.bodyBytes, maxPromptChars: limits.maxPromptChars, concurrency: 8 });
    expect(report.requests).toBe(1000);
    expect(report.examples).toEqual([]);
    expect(report.unexpected5xx).toBe(0);
    // The mix really exercised both sides of the validator.
    expect(report.statuses["200"]).toBeGreaterThan(100);
    expect(report.statuses["400"]).toBeGreaterThan(100);
    expect(report.statuses["413"]).toBeGreaterThan(5);
    expect((await fetch(url + "/healthz")).status).toBe(200);
    expect((await post(url, { prompt: "still here" })).json.expectedTokens).toBe(10);
  });
});
