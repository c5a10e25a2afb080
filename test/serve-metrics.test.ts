/**
 * /metrics for operators (issue 10, item 2): the exposition passes `promtool check metrics` (run when
 * promtool is installed — Debian package `prometheus` — and skipped with a message otherwise), and carries
 * build and model info plus per-model histograms of what was predicted and reserved.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, describe, expect, it } from "vitest";
import { uniformBuckets } from "../src/data/buckets.js";
import { buildServer } from "../src/serve/server.js";
import { SyntheticPredictor } from "../src/serve/synthetic.js";
import { writeTinyModel } from "./helpers/predictor-fixtures.js";
import { tempDir } from "./helpers/tmp.js";

const promtool = spawnSync("promtool", ["--version"]).status === 0;
if (!promtool) console.warn("test/serve-metrics: promtool not installed (Debian: apt-get install prometheus), skipping the promtool check");
const apps: FastifyInstance[] = [];
afterAll(async () => {
  for (const a of apps) await a.close();
});

async function serve(opts: Parameters<typeof buildServer>[0]) {
  const app = await buildServer({ maxWaitMs: 0, ...opts });
  apps.push(app);
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  await app.lenpred.ready;
  return url;
}
const post = (url: string, body: unknown) =>
  fetch(url + "/v1/predict", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }).then((r) => r.json());

describe("/metrics", () => {
  it("exports build info, model info and per-model histograms of predicted and reserved tokens", async () => {
    const predictor = new SyntheticPredictor({ buckets: uniformBuckets(512, 4) });
    const url = await serve({ predictor });
    // 4 chars per token: 40 tokens → bucket 0 (≤ 128), 400 tokens → bucket 3.
    await post(url, { prompts: ["x".repeat(160), "x".repeat(1600)] });
    await post(url, { prompt: "x".repeat(160), quantile: 0.99 });
    const m = await (await fetch(url + "/metrics")).text();
    const version = (await import("../package.json", { with: { type: "json" } })).default.version;
    expect(m).toContain(`lenpred_build_info{version="${version}"} 1`);
    expect(m).toContain('lenpred_model_info{model="synthetic",kind="synthetic",buckets="4",tokenizer="unknown"} 1');
    expect(m).toContain('lenpred_reserved_tokens_count{model="synthetic"} 3');
    const reserve = (await post(url, { prompt: "x".repeat(160), quantile: 0.99 })).upperBound as number;
    expect(reserve).toBeGreaterThan(128); // the quantile reservation is the one recorded, not the mode's
    const m2 = await (await fetch(url + "/metrics")).text();
    // Reservations 128, 512, q0.99 (twice): cumulative bucket counts at the model's own edges.
    expect(m2).toContain('lenpred_reserved_tokens_bucket{le="128",model="synthetic"} 1');
    expect(m2).toContain('lenpred_reserved_tokens_count{model="synthetic"} 4');
    const expectedSum = Number(/lenpred_predicted_tokens_sum\{model="synthetic"\} (\S+)/.exec(m2)![1]);
    const preds = [predictor.predictOne("x".repeat(160)), predictor.predictOne("x".repeat(1600))];
    expect(expectedSum).toBeCloseTo(3 * preds[0]!.expectedTokens + preds[1]!.expectedTokens, 6);
  });

  it("labels a model directory's metrics with its name, kind and tokenizer from lenpred.json", async () => {
    const dir = join(tempDir("lenpred-serve-metrics-"), "tiny-model");
    writeTinyModel(dir, { kind: "uniform", edges: [1, 2, 3, 4] }, 4, {});
    const url = await serve({ modelDir: dir, loadOptions: { threads: 1 } });
    await post(url, { prompt: "write a poem" });
    const m = await (await fetch(url + "/metrics")).text();
    expect(m).toContain('lenpred_model_info{model="tiny-model",kind="distilbert",buckets="4",tokenizer="test-counting"} 1');
    expect(m).toContain('lenpred_predicted_tokens_count{model="tiny-model"} 1');
  });

  it.skipIf(!promtool)("passes promtool check metrics, process metrics included (skipped when promtool is absent: apt-get install prometheus)", async () => {
    const url = await serve({ predictor: new SyntheticPredictor(), processMetrics: true, online: {} });
    await post(url, { prompt: "hello" });
    // The online-learning gauges and counters too, per target model.
    const obs = await fetch(url + "/v1/observe", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ observations: [{ prompt: "hello", output_tokens: 40, model: "gpt-4" }, { prompt: "hi there", output_tokens: 90, model: "gpt-4" }] }) });
    expect(obs.status).toBe(202);
    await apps.at(-1)!.lenpred.online!.idle();
    await fetch(url + "/nope");
    const text = await (await fetch(url + "/metrics")).text();
    expect(text).toMatch(/^lenpred_nodejs_active_handles\{/m);
    expect(text).not.toMatch(/^lenpred_nodejs_active_\w+_total/m);
    expect(text).toContain('lenpred_observations_total{model="gpt-4"} 2');
    expect(text).toMatch(/^lenpred_online_reserve_coverage_ratio\{model="gpt-4"\} /m);
    const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});
