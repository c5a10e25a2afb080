/**
 * `lenpred serve` over real DistilBERT-kind model directories (a tiny model.onnx + tokenizer.json built by
 * test/helpers/predictor-fixtures.ts): the server loads them with `LengthPredictor.load` and every quantile
 * answer comes from LengthPredictor — including the regression and quantile heads, which have no bucket
 * probabilities. Expected values are recomputed in JS from the fixture's weights (referenceOutputs).
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, describe, expect, it } from "vitest";
import { bucketOf, upperBound, type BucketScheme } from "../src/data/buckets.js";
import { normalQuantile } from "../src/model/decode.js";
import { LengthPredictor } from "../src/predictor/length-predictor.js";
import type { Prediction } from "../src/model/prediction.js";
import { buildServer } from "../src/serve/server.js";
import { repoRoot } from "../src/util/paths.js";
import { ID, referenceOutputs, writeTinyModel, type TinyModel } from "./helpers/predictor-fixtures.js";
import { tempDir } from "./helpers/tmp.js";

const root = tempDir("lenpred-serve-distilbert-");
// The fixture's outputs are small log-lengths (answers of a fraction of a token to a few tokens), so the
// buckets are a quarter-token wide: the bucket — what quantile mode changes — then differs between levels.
const scheme: BucketScheme = { kind: "log", edges: Array.from({ length: 20 }, (_, i) => (i + 1) / 4) };
const STD = 0.5;
const reg = writeTinyModel(join(root, "reg"), scheme, 1, { head: "regression", residualStd: STD }, "reg");
const quant = writeTinyModel(join(root, "quant"), scheme, 3, { head: "quantile", quantiles: [0.1, 0.5, 0.9] }, "quant");
const noStd = writeTinyModel(join(root, "nostd"), scheme, 1, { head: "regression" }, "reg");
const ids = (words: string) => [ID["[CLS]"]!, ...words.split(" ").map((w) => ID[w]!), ID["[SEP]"]!];

/** Tokens → the prediction the server must return (bucket of the reserve, its upper edge, expectedTokens). */
function expected(model: TinyModel, words: string, reserveLog: (out: number[]) => number, pointLog: (out: number[]) => number) {
  const out = referenceOutputs(model, ids(words));
  const reserve = Math.max(0, Math.expm1(reserveLog(out)));
  const bucket = bucketOf(scheme, reserve);
  return { bucket, upperBound: upperBound(scheme, bucket), expectedTokens: Math.max(0, Math.expm1(pointLog(out))) };
}
const regAt = (words: string, q?: number) =>
  expected(reg, words, (o) => o[0]! + (q === undefined ? 0 : normalQuantile(q) * STD), (o) => o[0]!);

function close(got: Prediction, want: { bucket: number; upperBound: number; expectedTokens: number }) {
  expect(got.bucket).toBe(want.bucket);
  expect(got.upperBound).toBe(want.upperBound);
  expect(got.expectedTokens).toBeCloseTo(want.expectedTokens, 2);
  expect(got.probabilities).toBeUndefined();
}

const apps: FastifyInstance[] = [];
const opened: LengthPredictor[] = [];
async function serve(dir: string) {
  const predictor = await LengthPredictor.load(dir, { threads: 1 });
  opened.push(predictor);
  const app = await buildServer({ predictor, maxWaitMs: 5, warmup: true });
  apps.push(app);
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  await app.lenpred.ready;
  return url;
}
afterAll(async () => {
  for (const a of apps) await a.close();
  for (const p of opened) await p.dispose();
});

async function post(url: string, body: unknown) {
  const res = await fetch(url + "/v1/predict", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

describe("serving a regression-head DistilBERT model directory", () => {
  let url = "";
  it("loads it through LengthPredictor and reports it on /v1/model", async () => {
    url = await serve(reg.dir);
    expect(await (await fetch(url + "/v1/model")).json()).toMatchObject({ name: "distilbert", buckets: scheme });
  });

  it("answers prompt, chat and batch requests with the model's outputs", async () => {
    const one = await post(url, { prompt: "Write a POEM about the sea" });
    expect(one.status).toBe(200);
    close(one.json, regAt("write a poem about the sea"));
    const chat = await post(url, { model: "x", messages: [{ role: "system", content: "be brief" }, { role: "user", content: "list one word" }] });
    close(chat.json, regAt("list one word"));
    const many = await post(url, { prompts: ["a long detailed story", "write", "the essay"] });
    ["a long detailed story", "write", "the essay"].forEach((w, i) => close(many.json.predictions[i], regAt(w)));
  });

  it("serves quantiles from the recorded residual spread (which bucket probabilities could not give)", async () => {
    const buckets = new Set<number>();
    for (const q of [0.1, 0.5, 0.9, 0.99]) {
      const r = await post(url, { prompt: "a detailed essay", quantile: q });
      expect(r.status).toBe(200);
      close(r.json, regAt("a detailed essay", q));
      buckets.add(r.json.bucket);
    }
    expect(buckets.size).toBeGreaterThanOrEqual(3); // the levels really reserve differently
    // The reservation grows with q while the point estimate does not move.
    const lo = await post(url, { prompt: "write a long story", quantile: 0.05 });
    const hi = await post(url, { prompt: "write a long story", quantile: 0.999 });
    expect(hi.json.upperBound).toBeGreaterThanOrEqual(lo.json.upperBound);
    expect(hi.json.expectedTokens).toBeCloseTo(lo.json.expectedTokens, 6);
  });

  it("gives concurrent requests with different quantiles each their own answer", async () => {
    const asks = [undefined, 0.2, 0.9, undefined, 0.9, 0.6].map((q, i) => ({ words: ["write", "a poem", "the sea", "one word", "long essays", "a story"][i]!, q }));
    const res = await Promise.all(asks.map((a) => post(url, { prompt: a.words, ...(a.q === undefined ? {} : { quantile: a.q }) })));
    res.forEach((r, i) => {
      const words = asks[i]!.words === "long essays" ? "long essay ##s" : asks[i]!.words;
      close(r.json, regAt(words, asks[i]!.q));
    });
  });
});

describe("serving other DistilBERT heads", () => {
  it("quantile head: the median, or the requested level interpolated between the trained ones", async () => {
    const url = await serve(quant.dir);
    const med = (o: number[]) => [...o].sort((a, b) => a - b)[1]!;
    // q = 0.85 lies 7/8 of the way from level 0.5 to level 0.9.
    const at085 = (o: number[]) => { const s = [...o].sort((a, b) => a - b); return s[1]! + ((s[2]! - s[1]!) * 7) / 8; };
    const median = expected(quant, "write a poem", med, med);
    const q085 = expected(quant, "write a poem", at085, med);
    expect(q085.bucket).toBeGreaterThan(median.bucket); // the fixture discriminates the two
    close((await post(url, { prompt: "write a poem" })).json, median);
    close((await post(url, { prompt: "write a poem", quantile: 0.85 })).json, q085);
  });

  it("regression head without a recorded residual spread: 400 on quantile, plain requests still served", async () => {
    const url = await serve(noStd.dir);
    const r = await post(url, { prompt: "write a poem", quantile: 0.9 });
    expect(r.status).toBe(400);
    expect(r.json.error).toEqual({ field: "quantile", message: expect.stringMatching(/residual std/) });
    expect((await post(url, { prompt: "write a poem" })).status).toBe(200);
  });
});

describe("lenpred serve --model <distilbert dir> (CLI)", () => {
  it("loads the directory with LengthPredictor.load and serves its quantiles", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", join(repoRoot, "src", "cli.ts"), "serve", "--port", "0", "--model", reg.dir], { cwd: repoRoot });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    try {
      const ready = () => out.split("\n").find((l) => l.includes('"msg":"ready"'));
      for (let i = 0; i < 600 && !ready() && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
      const line = JSON.parse(ready()!) as { address: string; predictor: string; buckets: number };
      expect(line).toMatchObject({ predictor: "distilbert", buckets: 20 });
      const url = line.address;
      close((await post(url, { prompt: "a detailed essay", quantile: 0.9 })).json, regAt("a detailed essay", 0.9));
      const bad = await post(url, { prompt: "a", quantile: 1 });
      expect(bad.status).toBe(400);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  }, 60_000);
});
