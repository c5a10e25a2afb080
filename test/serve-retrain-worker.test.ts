import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { OnlineLearner } from "../src/online/learner.js";
import { OnlineService } from "../src/online/service.js";
import { buildServer } from "../src/serve/server.js";
import { repoRoot } from "../src/util/paths.js";
import { createRng } from "../src/util/rng.js";
import { tempDir } from "./helpers/tmp.js";

const MODEL = join(repoRoot, "models", "alpaca-s3");
const RETRAIN = { every: 0, minSamples: 100, holdout: 60, epochs: 4, lr: 5e-4, threads: 1 };
const PROMPTS = ["Name one fact about jazz.", "Write a detailed report about chess, covering history and outlook."];

/** A target whose answer length depends on the kind of request, in a way the Alpaca-trained member does not know. */
function stream(n: number, seed: number, model: string) {
  const rng = createRng(seed);
  const subjects = ["rivers", "tax law", "jazz", "volcanoes", "chess", "bread", "satellites", "poetry"];
  return Array.from({ length: n }, (_, i) => {
    const long = rng.next() < 0.5;
    const s = subjects[i % subjects.length]!;
    return { prompt: long ? `Name one fact about ${s}.` : `Write a detailed report about ${s}, covering history and outlook.`, output_tokens: Math.round((long ? 500 : 12) * Math.exp(0.1 * (rng.next() - 0.5))), model };
  });
}

async function post(url: string, path: string, body: unknown) {
  const r = await fetch(url + path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: r.status, json: await r.json() as { predictions?: { expectedTokens: number; reserveTokens: number }[] } };
}

/** `lenpred serve` with the model in its predictor worker (the default) and a state dir. */
async function serve(stateDir: string) {
  const app = await buildServer({ modelDir: MODEL, maxWaitMs: 0, online: { stateDir, retrain: RETRAIN } });
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  await app.lenpred.ready;
  const predict = async (model: string) => (await post(url, "/v1/predict", { prompts: PROMPTS, model })).json.predictions!;
  return { app, url, predict, online: app.lenpred.online! };
}

describe("retraining with the model in the predictor worker", () => {
  it("swaps an accepted member into the worker for its target only, exactly as in-process, and restores it after a restart", async () => {
    const dir = tempDir();
    const s = await serve(dir);
    expect(s.online.learner.hasSlowMember).toBe(true);
    const data = stream(360, 1, "inverse");
    for (let i = 0; i < data.length; i += 60) expect((await post(s.url, "/v1/observe", { observations: data.slice(i, i + 60) })).status).toBe(202);
    expect((await post(s.url, "/v1/observe", { observations: stream(60, 3, "other") })).status).toBe(202);
    await s.online.idle();
    const [inverseBefore, otherBefore] = [await s.predict("inverse"), await s.predict("other")];

    const r = await s.online.retrain("inverse");
    expect(r.accepted).toBe(true);
    const members = JSON.parse(readFileSync(join(dir, "members.json"), "utf8"));
    expect(existsSync(join(dir, members.inverse, "lenpred.json"))).toBe(true);
    const inverseAfter = await s.predict("inverse");
    const otherAfter = await s.predict("other");
    // The retrained member moves this target's predictions; the other target's are untouched.
    expect(inverseAfter.map((p) => p.expectedTokens)).not.toEqual(inverseBefore.map((p) => p.expectedTokens));
    expect(otherAfter).toEqual(otherBefore);
    await s.app.close();

    // The same state dir served in-process (`--no-worker`'s path) predicts the same: the worker ran the same member.
    const inProcess = await OnlineService.open(await OnlineLearner.load(MODEL), { stateDir: dir, retrain: RETRAIN });
    const [ip, op] = [await inProcess.predictBatch(PROMPTS, { model: "inverse" }), await inProcess.predictBatch(PROMPTS, { model: "other" })];
    await inProcess.close();
    await inProcess.learner.dispose();
    ip.forEach((p, i) => {
      expect(p.expectedTokens).toBeCloseTo(inverseAfter[i]!.expectedTokens, 3);
      expect(p.reserveTokens).toBe(inverseAfter[i]!.reserveTokens);
      expect(op[i]!.expectedTokens).toBeCloseTo(otherAfter[i]!.expectedTokens, 3);
    });

    // A restart of the worker server loads members.json into the worker.
    const again = await serve(dir);
    try {
      const restored = await again.predict("inverse");
      restored.forEach((p, i) => expect(p.expectedTokens).toBeCloseTo(inverseAfter[i]!.expectedTokens, 3));
      expect(await again.predict("other")).toEqual(otherAfter);
    } finally {
      await again.app.close();
    }
  }, 180_000);
});

describe("WorkerPredictor members", () => {
  it("runs a loaded member in the worker like the in-process one and frees it only after its in-flight batches", async () => {
    const { WorkerPredictor } = await import("../src/serve/worker-predictor.js");
    const { loadMemberInProcess } = await import("../src/online/retrain.js");
    const wp = await WorkerPredictor.start(MODEL, {}, { features: true });
    try {
      expect(wp.slow!.weight).toBeGreaterThan(0);
      const dir = join(MODEL, "distilbert");
      const local = await loadMemberInProcess(dir);
      const want = await local.predictBatch(PROMPTS);
      await local.dispose();
      const m = await wp.loadMember(dir);
      // The base's own member (handle 0) is the same model: same predictions.
      expect((await wp.slow!.predictor.predictBatch(PROMPTS)).map((p) => p.expectedTokens)).toEqual(want.map((p) => p.expectedTokens));
      const inFlight = m.predictBatch(PROMPTS);
      const disposed = m.dispose();
      expect((await inFlight).map((p) => p.expectedTokens)).toEqual(want.map((p) => p.expectedTokens));
      await disposed;
      await expect(m.predictBatch(PROMPTS)).rejects.toThrow(/no member/);
      // The base is untouched.
      expect(await wp.predictBatch(PROMPTS)).toHaveLength(2);
    } finally {
      await wp.dispose();
    }
  }, 60_000);
});
