import { existsSync, readFileSync, readdirSync, renameSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { train } from "../src/train/loop.js";
import { CHECKPOINT_DIR, TRAINING_FILE, loadRun, recoverOutDir } from "../src/train/run-dir.js";
import { readSafetensors } from "../src/model/safetensors.js";
import type { NamedTensors } from "../src/engine/tensors.js";
import { bowHooks, synthData, testOptions } from "./helpers/train-fixtures.js";
import { tempDir } from "./helpers/tmp.js";

const root = tempDir("lenpred-train-loop-");
let n = 0;
const fresh = () => join(root, `run-${n++}`);

function bits(t: NamedTensors): Record<string, number[]> {
  return Object.fromEntries([...t].map(([k, v]) => [k, Array.from(new Uint32Array(v.data.buffer.slice(0)))]));
}

describe("training loop", () => {
  it("learns the synthetic task, records every epoch and leaves a clean model directory", async () => {
    const out = fresh();
    const o = testOptions(out, { epochs: 4 });
    const data = synthData();
    const res = await train(o, data, bowHooks(o));
    expect(res.status).toBe("completed");
    const h = res.state.history;
    expect(h.map((r) => r.epoch)).toEqual([1, 2, 3, 4]);
    expect(h[3]!.valLoss).toBeLessThan(h[0]!.valLoss);
    expect(h[3]!.trainLoss).toBeLessThan(h[0]!.trainLoss);
    // The signal token decides the bucket, so a learner must beat the majority class by far.
    const counts = [0, 0, 0, 0];
    for (const e of data.val) counts[e.bucket]!++;
    expect(h[3]!.accuracy).toBeGreaterThan(Math.max(...counts) / data.val.length + 0.3);
    for (const r of h) {
      expect(r.mae).toBeGreaterThanOrEqual(0);
      expect(r.underAllocation).toBeGreaterThanOrEqual(0);
      expect(r.underAllocation).toBeLessThanOrEqual(1);
      expect(r.tokensPerSecond).toBeGreaterThan(0);
    }
    expect(readdirSync(out).sort()).toEqual(["README.md", "lenpred.json", TRAINING_FILE, "weights.safetensors"].sort());
    const card = readFileSync(join(out, "README.md"), "utf8");
    expect(card).toContain(`lenpred train --data synthetic --out ${out} --config tiny --epochs 4 --lr 0.05 --batch-size 16`);
    expect(card).toContain("200 train / 60 validation records");
    const best = res.state.best!;
    expect(card).toContain(`best epoch (by val_loss): ${best.epoch} — validation bucket accuracy ${(100 * best.metrics.accuracy).toFixed(2)} %`);
    expect(card.match(/^\| \d( \*)? \| /gm)).toHaveLength(4);
    const summary = JSON.parse(readFileSync(join(out, TRAINING_FILE), "utf8"));
    expect(summary.status).toBe("completed");
    expect(summary.history).toHaveLength(4);
  });

  it("records the mean training length per bucket for the classification head's expectedTokens", async () => {
    const out = fresh();
    const o = testOptions(out, { epochs: 1 });
    const data = synthData(120, 30);
    let means: number[] | undefined;
    const hooks = bowHooks(o);
    const write = hooks.writeModel;
    hooks.writeModel = async (dir, m, info) => { means = info.head.bucketMeans; await write(dir, m, info); };
    await train(o, data, hooks);
    for (let b = 0; b < 4; b++) {
      const lens = data.train.filter((e) => e.bucket === b).map((e) => e.outputTokens);
      expect(means![b]).toBeCloseTo(lens.reduce((x, y) => x + y, 0) / lens.length, 9);
    }
  });

  it("steps the optimizer once per batch with the linear schedule over all epochs", async () => {
    const out = fresh();
    const lrs: number[] = [];
    const o = testOptions(out, { epochs: 2, warmup: 3 });
    const data = synthData(50, 20);
    const hooks = bowHooks(o, { onStep: (p) => lrs.push(p.lr) });
    await train(o, data, hooks);
    const perEpoch = Math.ceil(50 / 16);
    expect(lrs).toHaveLength(2 * perEpoch);
    expect(hooks.models[0]!.stepsTaken).toBe(2 * perEpoch);
    expect(lrs[0]).toBe(0);
    expect(lrs[3]).toBeCloseTo(o.lr, 12);
    expect(lrs[lrs.length - 1]).toBeCloseTo(o.lr / (2 * perEpoch - 3), 12);
  });

  for (const [label, stopAt] of [["mid-epoch", 5], ["at an epoch boundary", 13], ["in a later epoch", 30]] as const) {
    it(`resumes ${label} bit-exactly: same parameters, moments and losses as an uninterrupted run`, async () => {
      const data = synthData();
      const a = fresh();
      const oa = testOptions(a, { keepCheckpoint: true, weightDecay: 0.01, warmup: 0.1 });
      const ra = await train(oa, data, bowHooks(oa));

      const b = fresh();
      const ob = { ...oa, out: b };
      const ac = new AbortController();
      const first = await train(ob, data, bowHooks(ob, { signal: ac.signal, onStep: (p) => { if (p.globalStep === stopAt) ac.abort(); } }));
      expect(first.status).toBe("interrupted");
      expect(existsSync(join(b, CHECKPOINT_DIR, "state.json"))).toBe(true);
      const ck = await loadRun(b);
      expect(ck.state.globalStep).toBe(stopAt);
      const second = await train(ob, data, bowHooks(ob), ck);
      expect(second.status).toBe("completed");

      const pa = (await loadRun(a)).optimizer, pb = (await loadRun(b)).optimizer;
      expect(bits(pb)).toEqual(bits(pa));
      expect(second.state.history.map((r) => [r.trainLoss, r.valLoss, r.accuracy])).toEqual(ra.state.history.map((r) => [r.trainLoss, r.valLoss, r.accuracy]));
      expect(readFileSync(join(b, "weights.safetensors"))).toEqual(readFileSync(join(a, "weights.safetensors")));
    });
  }

  it("writes interval checkpoints mid-epoch that resume exactly", async () => {
    const data = synthData();
    const a = fresh();
    const oa = testOptions(a, { keepCheckpoint: true });
    await train(oa, data, bowHooks(oa));

    const b = fresh();
    const ob = { ...oa, out: b, checkpointMinutes: 1 };
    let clock = 0;
    const reasons: string[] = [];
    // The first interval checkpoint is our "killed here" snapshot.
    const snapshots: Promise<Awaited<ReturnType<typeof loadRun>>>[] = [];
    const hooks = bowHooks(ob, {
      now: () => (clock += 20_000), // 20 s per clock read: an interval save every few steps
      onCheckpoint: (reason) => {
        reasons.push(reason);
        if (reason === "interval" && snapshots.length === 0) snapshots.push(loadRun(b));
      },
    });
    await train(ob, data, hooks);
    expect(reasons.filter((r) => r === "interval").length).toBeGreaterThan(0);
    const snap = await snapshots[0]!;
    expect(snap.state.batchInEpoch).toBeGreaterThan(0);
    expect(snap.state.status).toBe("running");
    const c = fresh();
    const oc = { ...oa, out: c };
    await train(oc, data, bowHooks(oc), { state: { ...snap.state, options: oc }, optimizer: snap.optimizer });
    expect(bits((await loadRun(c)).optimizer)).toEqual(bits((await loadRun(a)).optimizer));
  });

  it("keeps the best epoch's model and stops early when validation stops improving", async () => {
    const out = fresh();
    // Validation labels are pure noise: validation loss gets worse as the model fits the training split.
    const data = synthData(200, 80, 1);
    const o = testOptions(out, { epochs: 12, patience: 2, lr: 0.2 });
    const paramsByEpoch = new Map<number, Float32Array>();
    const hooks = bowHooks(o, { onEpoch: (rec) => paramsByEpoch.set(rec.epoch, Float32Array.from(hooks.models[0]!.w)) });
    const res = await train(o, data, hooks);
    expect(res.status).toBe("early-stopped");
    const h = res.state.history;
    expect(h.length).toBeLessThan(12);
    const bestEpoch = h.reduce((b, r) => (r.valLoss < b.valLoss ? r : b)).epoch;
    expect(res.state.best!.epoch).toBe(bestEpoch);
    expect(h.length).toBe(bestEpoch + 2); // patience 2 after the best epoch
    expect(h.filter((r) => r.best).map((r) => r.epoch)).toContain(bestEpoch);
    const saved = await readSafetensors(join(out, "weights.safetensors"));
    expect(Array.from(saved.tensors.get("w")!.data)).toEqual(Array.from(paramsByEpoch.get(bestEpoch)!));
    expect(JSON.parse(readFileSync(join(out, "lenpred.json"), "utf8")).epoch).toBe(bestEpoch);
  });

  it("refuses to resume with different run-defining options or different data", async () => {
    const out = fresh();
    const o = testOptions(out);
    const data = synthData(60, 20);
    const ac = new AbortController();
    await train(o, data, bowHooks(o, { signal: ac.signal, onStep: () => ac.abort() }));
    const ck = await loadRun(out);
    const o2 = { ...o, lr: 0.1 };
    await expect(train(o2, data, bowHooks(o2), ck)).rejects.toThrow(/different --lr/);
    await expect(train(o, synthData(61, 20), bowHooks(o), ck)).rejects.toThrow(/prepared data changed/);
  });

  it("supports regression and quantile heads (metrics decoded from log-length outputs)", async () => {
    for (const head of ["regression", "quantile"] as const) {
      const out = fresh();
      const o = testOptions(out, { head, epochs: 3, lr: 0.1 });
      const res = await train(o, synthData(), bowHooks(o));
      const h = res.state.history;
      expect(h[2]!.valLoss).toBeLessThan(h[0]!.valLoss);
      if (head === "regression") expect(h[2]!.residualStd).toBeGreaterThan(0);
      expect(Number.isFinite(h[2]!.mae)).toBe(true);
    }
  });

  it("recovers an output directory from a swap interrupted between its renames", async () => {
    const out = fresh();
    mkdirSync(`${out}.tmp-999-3.old`, { recursive: true });
    writeFileSync(`${out}.tmp-999-3.old/lenpred.json`, "{}");
    mkdirSync(`${out}.tmp-999-4`, { recursive: true }); // an unfinished save
    await recoverOutDir(out);
    expect(readFileSync(join(out, "lenpred.json"), "utf8")).toBe("{}");
    expect(existsSync(`${out}.tmp-999-4`)).toBe(false);
    // With the directory present, leftovers are just removed.
    mkdirSync(`${out}.tmp-999-5.old`);
    await recoverOutDir(out);
    expect(existsSync(`${out}.tmp-999-5.old`)).toBe(false);
    expect(existsSync(join(out, "lenpred.json"))).toBe(true);
    renameSync(out, `${out}-moved`);
  });
});
