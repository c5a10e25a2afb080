import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { OnlineLearner } from "../src/online/learner.js";
import { OnlineService } from "../src/online/service.js";
import { repoRoot } from "../src/util/paths.js";
import { YieldGate } from "../src/util/yield-gate.js";
import { createRng } from "../src/util/rng.js";
import { tempDir } from "./helpers/tmp.js";

const MODEL = join(repoRoot, "models", "alpaca-s3");

/** A target whose answer length depends on the kind of request, in a way the Alpaca-trained member does not know. */
function stream(n: number, seed: number) {
  const rng = createRng(seed);
  const subjects = ["rivers", "tax law", "jazz", "volcanoes", "chess", "bread", "satellites", "poetry"];
  return Array.from({ length: n }, (_, i) => {
    const long = rng.next() < 0.5;
    const s = subjects[i % subjects.length]!;
    return { prompt: long ? `Name one fact about ${s}.` : `Write a detailed report about ${s}, covering history and outlook.`, output_tokens: Math.round((long ? 500 : 12) * Math.exp(0.1 * (rng.next() - 0.5))), model: "inverse" };
  });
}

describe("background retraining of the DistilBERT member", () => {
  it("trains in a child process on the stored samples, swaps in only a better member, and restores it after a restart", async () => {
    const dir = tempDir();
    const retrain = { every: 0, minSamples: 100, holdout: 60, epochs: 4, lr: 5e-4, threads: 1 };
    const svc = await OnlineService.open(await OnlineLearner.load(MODEL), { stateDir: dir, retrain });
    const data = stream(360, 1);
    for (let i = 0; i < data.length; i += 60) await svc.observe({ observations: data.slice(i, i + 60) });
    await svc.idle();
    const baseMember = svc.learner.memberOf("inverse");
    // A demand that no candidate can meet is refused and changes nothing.
    const strict = await svc.retrain("inverse", { margin: 0.999 });
    expect(strict.accepted).toBe(false);
    expect(svc.learner.memberOf("inverse")).toBe(baseMember);

    const r = await svc.retrain("inverse");
    expect(r.candidateMae).toBeLessThan(r.currentMae!);
    expect(r.accepted).toBe(true);
    expect(svc.learner.memberOf("inverse")).not.toBe(baseMember);
    expect(svc.learner.memberOf("other")).toBe(baseMember);
    expect(svc.stats()).toMatchObject({ retrains: 2 });
    expect(svc.stats().lastRetrain[0]).toMatchObject({ model: "inverse", accepted: true, heldOut: 60 });
    const members = JSON.parse(readFileSync(join(dir, "members.json"), "utf8"));
    expect(existsSync(join(dir, members.inverse, "lenpred.json"))).toBe(true);
    const [after] = await svc.predictBatch(["Name one fact about jazz."], { model: "inverse" });
    await svc.close();

    const again = await OnlineService.open(await OnlineLearner.load(MODEL), { stateDir: dir, retrain });
    expect(again.learner.memberOf("inverse")).not.toBe(again.learner.memberOf("other"));
    const [p] = await again.predictBatch(["Name one fact about jazz."], { model: "inverse" });
    expect(p!.expectedTokens).toBeCloseTo(after!.expectedTokens, 0);
    await again.close();
    await again.learner.dispose();
  }, 120_000);
});

describe("automatic retraining", () => {
  it("starts a retrain after `every` observations of a target, without the caller waiting for it", async () => {
    const dir = tempDir();
    const svc = await OnlineService.open(await OnlineLearner.load(MODEL), { stateDir: dir, retrain: { every: 150, minSamples: 100, holdout: 40, epochs: 1 } });
    const data = stream(160, 2);
    await svc.observe({ observations: data.slice(0, 140) });
    await svc.idle();
    expect(svc.stats().retrains).toBe(0);
    await svc.observe({ observations: data.slice(140) });
    await svc.retrainIdle();
    await svc.close();
    expect(svc.stats().retrains).toBe(1);
    expect(svc.stats().lastRetrain[0]!.samples).toBe(160);
    await svc.learner.dispose();
  }, 120_000);
});

/** The `lenpred train` child of this process, if one runs: its pid and state letter (R, S, T = stopped...). */
function trainChild(): { pid: number; state: string } | undefined {
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(ppid) === process.pid && readFileSync(`/proc/${d}/cmdline`, "utf8").includes("train")) return { pid: Number(d), state: state! };
    } catch { /* exited meanwhile */ }
  }
  return undefined;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.runIf(process.platform === "linux")("retraining yields to predictions (YieldGate)", () => {
  it("keeps the training child stopped while predictions are in flight, finishes once idle, and close() kills a stopped one", async () => {
    const dir = tempDir();
    const yieldGate = new YieldGate({ resumeAfterMs: 5 });
    const svc = await OnlineService.open(await OnlineLearner.load(MODEL), { stateDir: dir, yieldGate, retrain: { every: 0, minSamples: 100, holdout: 40, epochs: 1 } });
    await svc.observe({ observations: stream(200, 3) });
    await svc.idle();
    yieldGate.setBusy(true);
    let done = false;
    const first = svc.retrain("inverse").finally(() => { done = true; });
    // A SCHED_IDLE child acts on SIGSTOP once it gets a CPU (a busy machine may delay that): wait for "T".
    let child = trainChild();
    for (let i = 0; i < 1000 && child?.state !== "T"; i++) { await sleep(10); child = trainChild(); }
    expect(child?.state).toBe("T");
    await sleep(1500);
    expect(trainChild()).toEqual({ pid: child!.pid, state: "T" });
    expect(done).toBe(false);
    yieldGate.setBusy(false);
    const r = await first;
    expect(r.reason ?? "").not.toMatch(/failed/);
    expect(svc.stats().retrains).toBe(1);
    expect(svc.stats().retrainYield!.pausedMs).toBeGreaterThanOrEqual(1500);

    // Stopped for good: close() must not wait for it (it would wait forever) but kill it, and not count it.
    yieldGate.setBusy(true);
    const second = svc.retrain("inverse");
    for (let i = 0; i < 1000 && trainChild()?.state !== "T"; i++) await sleep(10);
    const stopped = trainChild()!;
    expect(stopped.state).toBe("T");
    await svc.close();
    expect((await second).reason).toMatch(/aborted/);
    expect(svc.stats().retrains).toBe(1);
    expect(trainChild()).toBeUndefined();
    expect(readdirSync(join(dir, "retrain"))).toEqual([]);
    await svc.learner.dispose();
  }, 120_000);
});
