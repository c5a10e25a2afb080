/**
 * Online learning over HTTP (issue 11, phase 2): POST /v1/observe → 202, `model` + `reserveTokens` on
 * POST /v1/predict, validation / limits / per-model cap / bearer token as untrusted input, the state dir's lock,
 * and the OpenAPI document with the new operations.
 */
import SwaggerParser from "@apidevtools/swagger-parser";
import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { buildServer, type ServeOptions } from "../src/serve/server.js";
import { SyntheticBase, syntheticStream } from "./helpers/synthetic-base.js";
import { tempDir } from "./helpers/tmp.js";

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

async function serve(online: ServeOptions["online"], extra: Partial<ServeOptions> = {}) {
  const app = await buildServer({ predictor: new SyntheticBase(), maxWaitMs: 0, online, ...extra });
  apps.push(app);
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  await app.lenpred.ready;
  return { app, url };
}

async function call(url: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url + path, {
    method: body === undefined ? "GET" : "POST",
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies of many shapes, asserted field by field
  return { status: res.status, json: JSON.parse(text) as any, headers: res.headers };
}

describe("POST /v1/observe and online predictions", () => {
  it("learns a target's scale from observations; predictions for it carry the learned reserveTokens, others stay the base's", async () => {
    const { app, url } = await serve({});
    const before = await call(url, "/v1/predict", { prompt: "len=100 fresh prompt", model: "long-llm" });
    expect(before.status).toBe(200);
    expect(before.json).toMatchObject({ model: "long-llm", observations: 0, expectedTokens: 100 });
    expect(before.json.reserveTokens).toBeGreaterThanOrEqual(100);
    const stream = syntheticStream(200, 3, 0.1, 7, "long-llm");
    for (let i = 0; i < stream.length; i += 50) {
      const r = await call(url, "/v1/observe", { observations: stream.slice(i, i + 50) });
      expect(r.status).toBe(202);
      expect(r.json).toMatchObject({ accepted: 50, durable: false });
    }
    await app.lenpred.online!.idle();
    const after = await call(url, "/v1/predict", { prompt: "len=100 fresh prompt", model: "long-llm" });
    expect(after.json.observations).toBe(200);
    expect(after.json.expectedTokens).toBeGreaterThan(240); // ≈ 3 × 100
    expect(after.json.expectedTokens).toBeLessThan(360);
    expect(after.json.reserveTokens).toBeGreaterThan(after.json.expectedTokens);
    // Another target (and a chat body naming it) is untouched: the base's prediction.
    const other = await call(url, "/v1/predict", { model: "other", messages: [{ role: "user", content: "len=100 fresh prompt" }] });
    expect(other.json).toMatchObject({ model: "other", observations: 0, expectedTokens: 100 });
    // `quantile` keeps its meaning for bucket/upperBound, over the learned distribution; reserveTokens stays at the server's level.
    const q = await call(url, "/v1/predict", { prompt: "len=100 fresh prompt", model: "long-llm", quantile: 0.99 });
    expect(q.json.reserveTokens).toBe(after.json.reserveTokens);
    expect(q.json.upperBound).toBeGreaterThan(after.json.upperBound);
    // A single observation (not a batch) and the stats endpoint.
    expect((await call(url, "/v1/observe", { prompt: "len=50 x", output_tokens: 150, model: "long-llm", request_id: "r1" })).status).toBe(202);
    await app.lenpred.online!.idle();
    const stats = await call(url, "/v1/observe/stats");
    expect(stats.json.targets).toEqual([expect.objectContaining({ model: "long-llm", observations: 201 })]);
    expect(stats.json.accepted).toBe(201);
  });

  it("refuses invalid observations with 400 naming the field, and learns nothing from a bad batch", async () => {
    const { app, url } = await serve({ maxObservations: 3 }, { limits: { maxPromptChars: 100 } });
    const cases: Array<[unknown, string]> = [
      [{ prompt: "hi", output_tokens: -1 }, "output_tokens"],
      [{ prompt: "hi", output_tokens: 1.5 }, "output_tokens"],
      [{ prompt: "hi", output_tokens: "7" }, "output_tokens"],
      [{ prompt: "hi" }, "output_tokens"],
      [{ output_tokens: 3 }, "prompt"],
      [{ prompt: "   ", output_tokens: 3 }, "prompt"],
      [{ prompt: "x".repeat(101), output_tokens: 3 }, "prompt"],
      [{ prompt: "hi", messages: [{ role: "user", content: "hi" }], output_tokens: 3 }, "messages"],
      [{ messages: [{ role: "assistant", content: "hi" }], output_tokens: 3 }, "messages"],
      [{ prompt: "hi", output_tokens: 3, model: "bad name with spaces" }, "model"],
      [{ prompt: "hi", output_tokens: 3, prompt_tokens: -2 }, "prompt_tokens"],
      [{ observations: [] }, "observations"],
      [{ observations: [1, 2, 3, 4].map(() => ({ prompt: "hi", output_tokens: 3 })) }, "observations"],
      [{ observations: [{ prompt: "hi", output_tokens: 3 }, { prompt: "hi", output_tokens: 2e6 }] }, "observations[1].output_tokens"],
      [[{ prompt: "hi", output_tokens: 3 }], "body"],
    ];
    for (const [body, field] of cases) {
      const r = await call(url, "/v1/observe", body);
      expect({ body, status: r.status, field: r.json.error?.field }).toEqual({ body, status: 400, field });
      expect(typeof r.json.error.message).toBe("string");
    }
    await app.lenpred.online!.idle();
    expect(app.lenpred.online!.stats()).toMatchObject({ accepted: 0, targets: [] });
    // A bad target name on predict is the same 400.
    const p = await call(url, "/v1/predict", { prompt: "hi", model: "no spaces allowed" });
    expect(p.status).toBe(400);
    expect(p.json.error.field).toBe("model");
  });

  it("caps the number of target models: a flood of new names is refused and cannot evict or grow the others", async () => {
    const { app, url } = await serve({ maxModels: 2 });
    expect((await call(url, "/v1/observe", { observations: syntheticStream(20, 2, 0.1, 1, "a") })).status).toBe(202);
    expect((await call(url, "/v1/observe", { observations: syntheticStream(10, 2, 0.1, 2, "b") })).status).toBe(202);
    for (let i = 0; i < 20; i++) {
      const r = await call(url, "/v1/observe", { observations: [{ prompt: "len=10 x", output_tokens: 5, model: "a" }, { prompt: "len=10 y", output_tokens: 5, model: `flood-${i}` }] });
      expect(r.status).toBe(400);
      expect(r.json.error.field).toBe("observations[1].model");
    }
    await app.lenpred.online!.idle();
    const targets = app.lenpred.online!.stats().targets;
    expect(targets.map((t) => [t.model, t.observations])).toEqual([["a", 20], ["b", 10]]);
    // Predictions for an unknown name do not create a target either.
    await call(url, "/v1/predict", { prompt: "len=10 x", model: "never-observed" });
    expect(app.lenpred.online!.stats().targets).toHaveLength(2);
  });

  it("--observe-token: writes need the bearer token (401 with the error body otherwise); reads stay open", async () => {
    const { url } = await serve({ observeToken: "s3cret-token" });
    const obs = { prompt: "len=10 hi", output_tokens: 12 };
    for (const headers of <Record<string, string>[]>[{}, { authorization: "Bearer wrong" }, { authorization: "Basic s3cret-token" }, { authorization: "Bearer s3cret-token-and-more" }]) {
      const r = await call(url, "/v1/observe", obs, headers);
      expect(r.status).toBe(401);
      expect(r.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect(r.json.error).toEqual({ message: expect.stringMatching(/Bearer/), field: "authorization" });
      expect(JSON.stringify(r.json)).not.toContain("s3cret");
    }
    // Unauthenticated garbage is refused before the body is looked at: 401, not 400.
    expect((await call(url, "/v1/observe", { nonsense: true })).status).toBe(401);
    expect((await call(url, "/v1/observe", obs, { authorization: "Bearer s3cret-token" })).status).toBe(202);
    expect((await call(url, "/v1/predict", { prompt: "hi" })).status).toBe(200);
    expect((await call(url, "/v1/observe/stats")).status).toBe(200);
    expect((await fetch(url + "/metrics")).status).toBe(200);
  });

  it("acknowledges only durable observations with a state dir; a restart resumes; a second server on the dir fails", async () => {
    const stateDir = tempDir("lenpred-serve-online-");
    const first = await serve({ stateDir });
    const r = await call(first.url, "/v1/observe", { observations: syntheticStream(30, 2, 0.1, 3, "m") });
    expect(r.json).toMatchObject({ accepted: 30, durable: true, lastSeq: 30 });
    // One writer per state dir.
    const second = await buildServer({ predictor: new SyntheticBase(), online: { stateDir } });
    apps.push(second);
    await expect(second.lenpred.ready).rejects.toThrow(/one writer per state dir/);
    await first.app.close();
    apps.splice(apps.indexOf(first.app), 1);
    const again = await serve({ stateDir });
    const stats = await call(again.url, "/v1/observe/stats");
    expect(stats.json.targets).toEqual([expect.objectContaining({ model: "m", observations: 30 })]);
  });

  it("documents observe in /openapi.json (valid OpenAPI 3.1, operationIds, named schemas)", async () => {
    const { url } = await serve({ observeToken: "t" });
    const doc = (await call(url, "/openapi.json")).json;
    await SwaggerParser.validate(structuredClone(doc));
    expect(doc.paths["/v1/observe"].post.operationId).toBe("observe");
    expect(doc.paths["/v1/observe/stats"].get.operationId).toBe("getObserveStats");
    expect(doc.paths["/v1/observe"].post.responses).toHaveProperty("202");
    expect(doc.paths["/v1/observe"].post.responses).toHaveProperty("401");
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(["Observation", "ObserveAccepted", "ObserveStats", "Prediction"]));
    expect(doc.components.schemas.Prediction.properties).toHaveProperty("reserveTokens");
  });
});

describe("online learning with the model in the worker thread", () => {
  it("learns the n-gram readout from features the worker sends: same predictions as the in-process learner", async () => {
    const { NgramPredictor } = await import("../src/baselines/ngram/model.js");
    const { bucketCount } = await import("../src/data/buckets.js");
    const { createRng } = await import("../src/util/rng.js");
    const { LengthPredictor } = await import("../src/predictor/length-predictor.js");
    const { join } = await import("node:path");
    const { SCHEME } = await import("./helpers/synthetic-base.js");
    const rng = createRng(1);
    const hashBits = 10, H = 16, k = bucketCount(SCHEME);
    const r = (n: number, s: number) => Float32Array.from({ length: n }, () => (rng.next() - 0.5) * 2 * s);
    const ngram = new NgramPredictor(SCHEME, "bert-base-uncased", { hashBits, bigrams: false, lineStartWords: 0, charNgrams: [], lengthFeatures: false }, "regression",
      { hidden: H, E: r((1 << hashBits) * H, 1), b1: new Float32Array(H).fill(0.2), W: r(H * k, 0.1), bc: new Float32Array(k), R: r(H, 0.05), br: Float32Array.of(Math.log(60)) });
    const dir = join(tempDir("lenpred-serve-online-ngram-"), "ngram");
    await ngram.save(dir);
    // The target answers "elaborate" prompts with ~400 tokens and "brief" ones with ~25: only the n-gram readout can learn that.
    const data = Array.from({ length: 120 }, (_, i) => ({ prompt: `${i % 2 ? "elaborate essay" : "brief answer"} topic ${i % 13}`, output_tokens: i % 2 ? 400 : 25, model: "t" }));
    const run = async (source: Partial<ServeOptions>) => {
      const app = await buildServer({ maxWaitMs: 0, online: {}, ...source } as ServeOptions);
      apps.push(app);
      const url = await app.listen({ port: 0, host: "127.0.0.1" });
      await app.lenpred.ready;
      for (let i = 0; i < data.length; i += 20) {
        expect((await call(url, "/v1/observe", { observations: data.slice(i, i + 20) })).status).toBe(202);
        await app.lenpred.online!.idle();
      }
      const out = [];
      for (const prompt of ["elaborate essay topic 99", "brief answer topic 99"]) out.push((await call(url, "/v1/predict", { prompt, model: "t" })).json);
      return out;
    };
    const inWorker = await run({ modelDir: dir });
    const inProcess = await run({ predictor: LengthPredictor.load(dir) });
    for (const [i, p] of inWorker.entries()) {
      expect(p.expectedTokens).toBeCloseTo(inProcess[i].expectedTokens, 3);
      expect(p.reserveTokens).toBe(inProcess[i].reserveTokens);
    }
    // The readout learned the difference (calibration alone gives both prompts one scale).
    expect(inWorker[0].expectedTokens / inWorker[1].expectedTokens).toBeGreaterThan(3);
  });

  it("answers 503 + Retry-After when the not-yet-learned backlog is at its bound", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    class Gated extends SyntheticBase {
      override async predictBatch(prompts: string[]) {
        await gate;
        return super.predictBatch(prompts);
      }
    }
    const { app, url } = await serve({ maxBacklog: 3 }, { predictor: new Gated() });
    try {
    expect((await call(url, "/v1/observe", { observations: syntheticStream(3, 1, 0.1, 1) })).status).toBe(202);
    await new Promise((r) => setImmediate(r));
    const full = await call(url, "/v1/observe", { prompt: "len=5 x", output_tokens: 5 });
    expect(full.status).toBe(503);
    expect(full.headers.get("retry-after")).toBe("1");
    expect(full.json.error.message).toMatch(/waiting to be learned/);
    } finally {
      release();
    }
    await app.lenpred.online!.idle();
    expect((await call(url, "/v1/observe", { prompt: "len=5 x", output_tokens: 5 })).status).toBe(202);
  });
});
