/**
 * The admin listener (`--admin-port`, src/serve/admin-thread.ts): /healthz, /readyz and /metrics answered
 * from a worker thread. Deterministic, no timing thresholds: the test blocks its own main event loop (the
 * server's) with a synchronous busy loop while a client in another thread keeps probing, and compares
 * when responses arrived (client's clock) with the block's start and end.
 */
import { spawnSync } from "node:child_process";
import { Worker } from "node:worker_threads";
import type { FastifyInstance } from "fastify";
import { afterAll, describe, expect, it, vi } from "vitest";
import { buildServer } from "../src/serve/server.js";
import { SyntheticPredictor } from "../src/serve/synthetic.js";
import type { Predictor } from "../src/model/prediction.js";

const promtool = spawnSync("promtool", ["--version"]).status === 0;
if (!promtool) console.warn("test/serve-admin: promtool not installed (Debian: apt-get install prometheus), skipping the promtool check");

const apps: FastifyInstance[] = [];
afterAll(async () => {
  for (const a of apps) await a.close();
});

async function serve(opts: Partial<Parameters<typeof buildServer>[0]>) {
  const app = await buildServer({ predictor: new SyntheticPredictor(), maxWaitMs: 0, adminPort: 0, ...opts });
  apps.push(app);
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  return { app, url, admin: `http://127.0.0.1:${app.lenpred.admin!.port}` };
}

interface Probe { t: number; status: number; body: string }

/**
 * A client on its own thread: probes each url in a loop, recording when each response arrived. Resolves
 * `started` after every url answered once; `stop()` ends the loop and returns the records per url.
 */
function prober(urls: string[]) {
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    let stop = false;
    parentPort.on("message", () => { stop = true; });
    const records = workerData.map(() => []);
    let started = 0;
    Promise.all(workerData.map(async (url, i) => {
      while (!stop) {
        const r = await fetch(url).then(async (res) => ({ t: Date.now(), status: res.status, body: await res.text() }), (e) => ({ t: Date.now(), status: 0, body: String(e) }));
        records[i].push(r);
        if (records[i].length === 1 && ++started === workerData.length) parentPort.postMessage("started");
      }
    })).then(() => parentPort.postMessage(records));`;
  const w = new Worker(code, { eval: true, workerData: urls });
  const started = new Promise<void>((resolve) => w.once("message", () => resolve()));
  return {
    started,
    async stop(): Promise<Probe[][]> {
      const done = new Promise<Probe[][]>((resolve) => w.once("message", resolve));
      w.postMessage("stop");
      const records = await done;
      await w.terminate();
      return records;
    },
  };
}

/** Block this thread (the server's event loop) for `ms`; returns the block's start and end on the wall clock. */
function blockEventLoop(ms: number): { start: number; end: number } {
  const start = Date.now();
  while (Date.now() - start < ms) { /* busy: nothing else runs on this thread */ }
  return { start, end: Date.now() };
}

const inside = (records: Probe[], block: { start: number; end: number }) => records.filter((r) => r.t > block.start && r.t < block.end);

describe("admin listener", () => {
  it("answers /healthz while the main event loop is blocked; the main port cannot", async () => {
    const { app, url, admin } = await serve({});
    await app.lenpred.ready;
    const p = prober([admin + "/healthz", url + "/healthz"]);
    await p.started;
    const block = blockEventLoop(1500);
    const [adminRecords, mainRecords] = await p.stop();
    const adminDuring = inside(adminRecords!, block);
    // Many admin answers arrived while the loop was blocked, all 200 (the heartbeat is younger than the default 10 s).
    expect(adminDuring.length).toBeGreaterThanOrEqual(2);
    expect(adminDuring.every((r) => r.status === 200 && JSON.parse(r.body).status === "ok")).toBe(true);
    // The control: the main port answers nothing during the block (at most one response already in flight when it began).
    expect(inside(mainRecords!, block).length).toBeLessThanOrEqual(1);
  });

  it("turns /healthz 503 with the stall age once the heartbeat is older than livenessStallMs, and 200 again after", async () => {
    const { app, admin } = await serve({ livenessStallMs: 200 });
    await app.lenpred.ready;
    const p = prober([admin + "/healthz"]);
    await p.started;
    const block = blockEventLoop(1500);
    const [records] = await p.stop();
    const stalled = inside(records!, block).filter((r) => r.status === 503);
    expect(stalled.length).toBeGreaterThanOrEqual(1);
    const last = JSON.parse(stalled.at(-1)!.body) as { error: { message: string; field: null } };
    expect(last.error.field).toBeNull();
    const age = Number(/no heartbeat for (\d+) ms \(threshold 200 ms\)/.exec(last.error.message)![1]);
    expect(age).toBeGreaterThanOrEqual(200);
    // Once the loop runs again the heartbeat resumes.
    await vi.waitFor(async () => expect((await fetch(admin + "/healthz")).status).toBe(200), { timeout: 5000, interval: 50 });
  });

  it("mirrors readiness (loading → ready), serves 404/405 in serve's error body, and closes with the app", async () => {
    let resolve!: (p: Predictor) => void;
    const { app, admin } = await serve({ predictor: new Promise<Predictor>((r) => { resolve = r; }) });
    const loading = await fetch(admin + "/readyz");
    expect(loading.status).toBe(503);
    expect(loading.headers.get("retry-after")).toBe("1");
    expect(await loading.json()).toEqual({ status: "loading" });
    resolve(new SyntheticPredictor());
    await app.lenpred.ready;
    await vi.waitFor(async () => expect(await (await fetch(admin + "/readyz")).json()).toEqual({ status: "ready" }), { timeout: 5000, interval: 20 });

    const missing = await fetch(admin + "/v1/predict");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { message: "no route GET /v1/predict", field: null } });
    const wrong = await fetch(admin + "/healthz", { method: "DELETE" });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("GET, HEAD");
    expect((await wrong.json()).error.field).toBeNull();

    await app.close();
    await expect(fetch(admin + "/healthz")).rejects.toThrow();
  });

  it("serves the main /metrics text (published every second) and it passes the same checks", async () => {
    const { app, url, admin } = await serve({ processMetrics: true });
    await app.lenpred.ready;
    const r = await fetch(url + "/v1/predict", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "hello" }) });
    expect(r.status).toBe(200);
    let text = "";
    await vi.waitFor(async () => {
      text = await (await fetch(admin + "/metrics")).text();
      expect(text).toContain('lenpred_http_requests_total{method="POST",route="/v1/predict",status="200"} 1');
    }, { timeout: 5000, interval: 100 });
    const res = await fetch(admin + "/metrics");
    expect(res.headers.get("content-type")).toBe(app.lenpred.metrics.registry.contentType);
    const version = (await import("../package.json", { with: { type: "json" } })).default.version;
    expect(text).toContain(`lenpred_build_info{version="${version}"} 1`);
    expect(text).toContain('lenpred_model_info{model="synthetic",kind="synthetic",buckets=');
    expect(text).toMatch(/^lenpred_nodejs_active_handles\{/m);
    expect(text).toContain("lenpred_prompts_total 1");
    if (promtool) {
      const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
      expect(check.stdout + check.stderr).toBe("");
      expect(check.status).toBe(0);
    }
  });

  it("refuses a busy admin port without leaving the model loading", async () => {
    const { app } = await serve({});
    await expect(buildServer({ predictor: new SyntheticPredictor(), adminPort: app.lenpred.admin!.port })).rejects.toThrow(/admin port 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  });
});
