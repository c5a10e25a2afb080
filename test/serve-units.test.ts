/** Pure parts of `lenpred serve`: the quantile semantics it serves, the chat → prompt rule, error field names, the micro-batcher. */
import { describe, expect, it } from "vitest";
import { uniformBuckets } from "../src/data/buckets.js";
import { LengthPredictor } from "../src/predictor/length-predictor.js";
import type { Prediction, Predictor } from "../src/model/prediction.js";
import { MicroBatcher, QueueFullError, QueueTimeoutError, ShuttingDownError } from "../src/serve/batcher.js";
import type { ChatPromptError } from "../src/serve/chat.js";
import { chatPrompt } from "../src/serve/chat.js";
import { fieldFromPointer } from "../src/serve/server.js";
import { SyntheticPredictor } from "../src/serve/synthetic.js";
import { LenpredError } from "../src/util/errors.js";
import { createRng } from "../src/util/rng.js";

/** Reference: sort-free brute force — the first b whose prefix sum, recomputed from scratch, reaches q·total. */
function referenceQuantile(p: number[], q: number): number {
  const total = p.reduce((a, b) => a + b, 0);
  for (let b = 0; b < p.length; b++) {
    if (p.slice(0, b + 1).reduce((a, x) => a + x, 0) >= q * total) return b;
  }
  return p.length - 1;
}

/** A predictor answering every prompt with the given prediction (what the server wraps in LengthPredictor.from). */
function fixed(pred: Prediction, buckets = uniformBuckets(200, 4)): Predictor {
  return {
    name: "fixed", buckets,
    predict: async () => pred,
    predictBatch: async (ps) => ps.map(() => pred),
  };
}
/** The server's quantile decision: LengthPredictor over a predictor with these probabilities. */
async function served(probabilities: number[], q: number): Promise<Prediction> {
  const scheme = uniformBuckets(probabilities.length * 10, probabilities.length);
  const lp = LengthPredictor.from(fixed({ bucket: 0, upperBound: 10, expectedTokens: 7, probabilities }, scheme));
  return (await lp.predictBatch(["x"], { quantile: q }))[0]!;
}

describe("quantile semantics the server serves (LengthPredictor)", () => {
  it("picks the smallest bucket whose cumulative probability reaches q", async () => {
    const p = [0.1, 0.2, 0.3, 0.4];
    expect((await served(p, 0.05)).bucket).toBe(0);
    expect((await served(p, 0.1)).bucket).toBe(0);
    expect((await served(p, 0.11)).bucket).toBe(1);
    expect((await served(p, 0.5)).bucket).toBe(2);
    expect((await served(p, 0.61)).bucket).toBe(3);
    expect((await served(p, 0.999)).bucket).toBe(3);
  });

  it("agrees with a brute-force reference on random distributions, and is monotone in q", async () => {
    const rng = createRng("quantile");
    for (let t = 0; t < 300; t++) {
      const n = 1 + rng.int(12);
      const raw = Array.from({ length: n }, () => (rng.next() < 0.2 ? 0 : rng.next()));
      if (!raw.some((x) => x > 0)) raw[0] = 1;
      const sum = raw.reduce((a, b) => a + b, 0);
      const p = raw.map((x) => x / sum);
      const q = Math.min(1 - 1e-6, Math.max(1e-6, rng.next()));
      const got = await served(p, q);
      expect(got.bucket).toBe(referenceQuantile(p, q));
      expect(got.upperBound).toBe((got.bucket + 1) * 10);
      expect((await served(p, Math.min(1 - 1e-6, q + 0.1))).bucket).toBeGreaterThanOrEqual(got.bucket);
    }
  });

  it("does not fall off the end when float sums stay a hair below 1", async () => {
    // 0.1 × 10 sums to 0.9999999999999999 in floating point.
    expect((await served(Array(10).fill(0.1), 0.9999999999)).bucket).toBe(9);
  });

  it("keeps expectedTokens (a mean) and the probabilities", async () => {
    const got = await served([0.5, 0.3, 0.15, 0.05], 0.9);
    expect(got).toEqual({ bucket: 2, upperBound: 30, expectedTokens: 7, probabilities: [0.5, 0.3, 0.15, 0.05] });
  });

  it("accepts only 0 < q < 1, and refuses predictors without probabilities with a LenpredError", async () => {
    for (const q of [0, 1, -0.1, 1.01, Number.NaN]) {
      await expect(served([0.5, 0.5], q)).rejects.toThrow(/quantile must be in \(0, 1\)/);
    }
    const point = LengthPredictor.from(fixed({ bucket: 0, upperBound: 50, expectedTokens: 1 }));
    await expect(point.predictBatch(["x"], { quantile: 0.9 })).rejects.toBeInstanceOf(LenpredError);
  });
});

describe("chatPrompt", () => {
  it("uses the last user message, ignoring system prompts, earlier turns and trailing assistant turns", () => {
    expect(chatPrompt([
      { role: "system", content: "You are terse." },
      { role: "user", content: "first question" },
      { role: "assistant", content: "first answer" },
      { role: "user", content: "second question" },
      { role: "assistant", content: null, tool_calls: [] },
    ])).toBe("second question");
  });

  it("joins the text parts of array content and skips other parts", () => {
    expect(chatPrompt([{ role: "user", content: [
      { type: "text", text: "Describe this image" },
      { type: "image_url", image_url: { url: "data:," } },
      { type: "text", text: "in one word" },
    ] }])).toBe("Describe this image\nin one word");
  });

  it("names the field when there is nothing to predict for", () => {
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e as ChatPromptError;
      }
      throw new Error("did not throw");
    };
    expect(err(() => chatPrompt([{ role: "system", content: "x" }])).field).toBe("messages");
    expect(err(() => chatPrompt([{ role: "user", content: "a" }, { role: "user", content: "  " }])).field).toBe("messages[1].content");
    expect(err(() => chatPrompt([{ role: "user", content: [{ type: "image_url" }] }])).field).toBe("messages[0].content");
    const long = err(() => chatPrompt([{ role: "user", content: [{ type: "text", text: "ab" }, { type: "text", text: "cd" }] }], 4));
    expect(long.field).toBe("messages[0].content");
    expect(long.message).toMatch(/longer than 4/);
    // code points, not UTF-16 units: 4 emoji are 8 units but fit a 4-character limit
    expect(chatPrompt([{ role: "user", content: "🙂🙂🙂🙂" }], 4)).toBe("🙂🙂🙂🙂");
  });
});

describe("fieldFromPointer", () => {
  it("turns JSON pointers into field paths", () => {
    expect(fieldFromPointer("")).toBe("body");
    expect(fieldFromPointer("/prompt")).toBe("prompt");
    expect(fieldFromPointer("/prompts/3")).toBe("prompts[3]");
    expect(fieldFromPointer("/messages/0/content/2/text")).toBe("messages[0].content[2].text");
    expect(fieldFromPointer("/messages/1", "role")).toBe("messages[1].role");
    expect(fieldFromPointer("", "prompt")).toBe("prompt");
  });
});

/** A predictor whose calls block until released, so batch formation is deterministic, not timing-dependent. */
class GatedPredictor implements Predictor {
  readonly name = "gated";
  readonly buckets = uniformBuckets(100, 4);
  readonly sizes: number[] = [];
  readonly quantiles: Array<number | undefined> = [];
  private gates: Array<() => void> = [];
  fail = false;
  /** Throw only for calls at this quantile. */
  failQuantile: number | undefined;
  /** Throw for any call that contains this prompt. */
  poison: string | undefined;
  async predict(p: string) {
    return (await this.predictBatch([p]))[0]!;
  }
  /** expectedTokens = prompt length + the quantile it was decoded at (0 without), so mix-ups show. */
  async predictBatch(prompts: string[], opts: { quantile?: number } = {}): Promise<Prediction[]> {
    this.sizes.push(prompts.length);
    this.quantiles.push(opts.quantile);
    await new Promise<void>((r) => this.gates.push(r));
    if (this.fail || (opts.quantile !== undefined && opts.quantile === this.failQuantile)) throw new Error("model exploded");
    if (this.poison !== undefined && prompts.includes(this.poison)) throw new Error(`cannot handle ${this.poison}`);
    return prompts.map((p) => ({ bucket: 0, upperBound: 25, expectedTokens: p.length + (opts.quantile ?? 0) }));
  }
  get waiting(): number {
    return this.gates.length;
  }
  release(): void {
    for (const g of this.gates.splice(0)) g();
  }
}

const tick = () => new Promise((r) => setTimeout(r, 5));
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await tick();
  expect(cond()).toBe(true);
}

describe("MicroBatcher", () => {
  it("coalesces prompts queued while a batch runs, up to maxBatch, in order", async () => {
    const p = new GatedPredictor();
    const b = new MicroBatcher(p, { maxBatch: 4, maxWaitMs: 300, maxQueue: 100 });
    const first = b.submit(["a"]);
    // maxWaitMs is long, so the single prompt is dispatched only when its wait runs out — unless
    // maxBatch fills first: submit 3 more in the same tick and the batch of 4 goes at once.
    const more = [b.submit(["bb"]), b.submit(["ccc", "dddd"])];
    await until(() => p.waiting === 1);
    expect(p.sizes).toEqual([4]);
    const later = [b.submit(["e".repeat(5)]), b.submit(["f".repeat(6), "g".repeat(7)]), b.submit(["h".repeat(8), "i".repeat(9)])];
    expect(b.depth).toBe(5);
    p.release();
    await until(() => p.waiting === 1);
    expect(p.sizes).toEqual([4, 4]);
    p.release();
    // One prompt is left: it goes when its maxWaitMs, counted from when it was queued, runs out.
    await until(() => p.waiting === 1);
    p.release();
    const results = await Promise.all([first, ...more, ...later]);
    expect(results.map((r) => r.map((x) => x.expectedTokens))).toEqual([[1], [2], [3, 4], [5], [6, 7], [8, 9]]);
    expect(p.sizes).toEqual([4, 4, 1]);
  });

  it("splits a batch by quantile: one call per distinct q, in queue order, each prompt decoded at its own q", async () => {
    const p = new GatedPredictor();
    const b = new MicroBatcher(p, { maxBatch: 8, maxWaitMs: 0, maxQueue: 100 });
    const first = b.submit(["a"]);
    await until(() => p.waiting === 1);
    const queued = [b.submit(["bb"], 0.9), b.submit(["ccc"]), b.submit(["dddd", "eeeee"], 0.9), b.submit(["f"], 0.5)];
    const onDone = Promise.all(queued);
    while (p.sizes.reduce((x, y) => x + y, 0) < 6 || p.waiting > 0) {
      p.release();
      await tick();
    }
    expect((await first)[0]!.expectedTokens).toBe(1);
    expect((await onDone).map((r) => r.map((x) => x.expectedTokens))).toEqual([[2.9], [3], [4.9, 5.9], [1.5]]);
    expect(p.sizes).toEqual([1, 3, 1, 1]);
    expect(p.quantiles).toEqual([undefined, 0.9, undefined, 0.5]);
  });

  it("a failed quantile group rejects only its own prompts", async () => {
    const p = new GatedPredictor();
    p.failQuantile = 0.5;
    const calls: Array<[number, boolean, number | undefined]> = [];
    const b = new MicroBatcher(p, { maxBatch: 8, maxWaitMs: 0, maxQueue: 100, onBatch: (size, _s, ok, d) => calls.push([size, ok, d.quantile]) });
    const first = b.submit(["a"]);
    await until(() => p.waiting === 1);
    const bad = b.submit(["xx", "yy"], 0.5);
    const good = b.submit(["zzz"], 0.25);
    bad.catch(() => undefined);
    let done = false;
    void Promise.allSettled([bad, good]).then(() => (done = true));
    while (!done) {
      p.release();
      await tick();
    }
    await first;
    await expect(bad).rejects.toThrow(/exploded/);
    expect((await good)[0]!.expectedTokens).toBe(3.25);
    // The failed pair is bisected (each prompt alone fails too); the 0.25 group is untouched.
    expect(calls).toEqual([[1, true, undefined], [2, false, 0.5], [1, false, 0.5], [1, false, 0.5], [1, true, 0.25]]);
  });

  it("dispatches a lone prompt after maxWaitMs", async () => {
    const p = new SyntheticPredictor();
    const b = new MicroBatcher(p, { maxBatch: 8, maxWaitMs: 30, maxQueue: 10 });
    const t0 = performance.now();
    await b.submit(["hello"]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
    expect(p.batchSizes).toEqual([1]);
  });

  it("refuses a request that does not fit the queue, all or nothing", async () => {
    const p = new GatedPredictor();
    const b = new MicroBatcher(p, { maxBatch: 2, maxWaitMs: 0, maxQueue: 3 });
    const running = b.submit(["a", "b"]);
    await until(() => p.waiting === 1);
    const queued = b.submit(["c", "d"]);
    await expect(b.submit(["e", "f"])).rejects.toBeInstanceOf(QueueFullError);
    expect(b.depth).toBe(2);
    const fits = b.submit(["g"]);
    expect(b.depth).toBe(3);
    p.release();
    await until(() => p.waiting === 1);
    p.release();
    await until(() => p.waiting === 1);
    p.release();
    expect((await Promise.all([running, queued, fits])).flat()).toHaveLength(5);
  });

  it("rejects every prompt of a failed batch and keeps serving", async () => {
    const p = new GatedPredictor();
    const b = new MicroBatcher(p, { maxBatch: 4, maxWaitMs: 0, maxQueue: 10 });
    p.fail = true;
    const bad = b.submit(["x", "y"]);
    bad.catch(() => undefined);
    for (let i = 0; i < 3; i++) {
      await until(() => p.waiting === 1);
      p.release();
    }
    await expect(bad).rejects.toThrow(/exploded/);
    expect(p.sizes).toEqual([2, 1, 1]);
    p.fail = false;
    const good = b.submit(["ok"]);
    await until(() => p.waiting === 1);
    p.release();
    expect((await good)[0]!.expectedTokens).toBe(2);
  });

  it("isolates a prompt that makes its batch fail: the innocent prompts batched with it are answered", async () => {
    const p = new GatedPredictor();
    p.poison = "BAD";
    const b = new MicroBatcher(p, { maxBatch: 8, maxWaitMs: 0, maxQueue: 100 });
    const first = b.submit(["a"]);
    await until(() => p.waiting === 1);
    const innocent = [b.submit(["bb"]), b.submit(["ccc", "dddd"]), b.submit(["eeeee"])];
    const guilty = b.submit(["BAD"]);
    guilty.catch(() => undefined);
    let done = false;
    void Promise.allSettled([...innocent, guilty]).then(() => (done = true));
    while (!done) {
      p.release();
      await tick();
    }
    await first;
    expect((await Promise.all(innocent)).map((r) => r.map((x) => x.expectedTokens))).toEqual([[2], [3, 4], [5]]);
    await expect(guilty).rejects.toThrow(/cannot handle BAD/);
    // 5 prompts: the failed call, then halves [bb ccc dddd] ok, [eeeee BAD] fails → [eeeee] ok, [BAD] fails.
    expect(p.sizes).toEqual([1, 5, 3, 2, 1, 1]);
  });

  it("does not bisect errors every prompt would hit (splitOnError false)", async () => {
    const p = new GatedPredictor();
    p.fail = true;
    const b = new MicroBatcher(p, { maxBatch: 8, maxWaitMs: 0, maxQueue: 100, splitOnError: () => false });
    const bad = b.submit(["x", "y", "z"]);
    await until(() => p.waiting === 1);
    p.release();
    await expect(bad).rejects.toThrow(/exploded/);
    expect(p.sizes).toEqual([3]);
  });

  it("refuses prompts that wait longer than maxQueueMs with QueueTimeoutError, and serves the rest", async () => {
    const p = new GatedPredictor();
    const b = new MicroBatcher(p, { maxBatch: 1, maxWaitMs: 0, maxQueue: 10, maxQueueMs: 40 });
    const running = b.submit(["a"]);
    await until(() => p.waiting === 1);
    const stale = b.submit(["bb", "ccc"]);
    stale.catch(() => undefined);
    // The running call is held far past the budget: the queued request must be refused meanwhile, not wait.
    let refused: unknown;
    stale.catch((e) => (refused = e));
    await until(() => refused !== undefined);
    expect(refused).toBeInstanceOf(QueueTimeoutError);
    expect((refused as QueueTimeoutError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect((refused as QueueTimeoutError).waitedMs).toBeGreaterThanOrEqual(40);
    expect(b.depth).toBe(0);
    expect(p.waiting).toBe(1); // the budget covers waiting in the queue, not a call already running
    p.release();
    expect((await running)[0]!.expectedTokens).toBe(1);
    const fresh = b.submit(["dddd"]);
    await until(() => p.waiting === 1);
    p.release();
    expect((await fresh)[0]!.expectedTokens).toBe(4);
    expect(p.sizes).toEqual([1, 1]);
  });

  it("reports busy from the first queued prompt until nothing is queued or running (also when the queue expires)", async () => {
    const p = new GatedPredictor();
    const seen: boolean[] = [];
    const b = new MicroBatcher(p, { maxBatch: 1, maxWaitMs: 0, maxQueue: 10, maxQueueMs: 40, onBusyChange: (busy) => seen.push(busy) });
    const first = b.submit(["a"]);
    const second = b.submit(["bb"]);
    expect(seen).toEqual([true]);
    await until(() => p.waiting === 1);
    p.release(); // the second is still queued: busy throughout
    await first;
    await until(() => p.waiting === 1);
    expect(seen).toEqual([true]);
    p.release();
    await second;
    await until(() => seen.length === 2);
    expect(seen).toEqual([true, false]);
    // A queued prompt refused by the time budget while nothing runs any more ends the busy spell too.
    const held = b.submit(["ccc"]);
    await until(() => p.waiting === 1);
    const stale = b.submit(["dddd"]);
    stale.catch(() => undefined);
    await expect(stale).rejects.toBeInstanceOf(QueueTimeoutError);
    expect(seen).toEqual([true, false, true]); // the call for "ccc" still runs
    p.release();
    await held;
    await until(() => seen.length === 4);
    expect(seen).toEqual([true, false, true, false]);
    // Expired while waiting for its batch to fill, with nothing running: idle at once.
    const lone: boolean[] = [];
    const slow = new MicroBatcher(p, { maxBatch: 4, maxWaitMs: 10_000, maxQueue: 10, maxQueueMs: 40, onBusyChange: (busy) => lone.push(busy) });
    await expect(slow.submit(["e"])).rejects.toBeInstanceOf(QueueTimeoutError);
    expect(lone).toEqual([true, false]);
  });

  it("close() answers everything queued, then refuses new work", async () => {
    const p = new GatedPredictor();
    const b = new MicroBatcher(p, { maxBatch: 1, maxWaitMs: 10_000, maxQueue: 10 });
    const pending = [b.submit(["a"]), b.submit(["bb"]), b.submit(["ccc"])];
    await until(() => p.waiting === 1);
    let closed = false;
    const closing = b.close().then(() => (closed = true));
    await expect(b.submit(["late"])).rejects.toBeInstanceOf(ShuttingDownError);
    for (let i = 0; i < 3; i++) {
      await until(() => p.waiting === 1);
      expect(closed).toBe(false);
      p.release();
    }
    await closing;
    expect((await Promise.all(pending)).flat().map((x) => x.expectedTokens)).toEqual([1, 2, 3]);
  });

  it("validates its options", () => {
    const p = new SyntheticPredictor();
    expect(() => new MicroBatcher(p, { maxBatch: 0, maxWaitMs: 0, maxQueue: 1 })).toThrow(/maxBatch/);
    expect(() => new MicroBatcher(p, { maxBatch: 1, maxWaitMs: -1, maxQueue: 1 })).toThrow(/maxWaitMs/);
    expect(() => new MicroBatcher(p, { maxBatch: 1, maxWaitMs: 0, maxQueue: 1.5 })).toThrow(/maxQueue/);
    expect(() => new MicroBatcher(p, { maxBatch: 1, maxWaitMs: 0, maxQueue: 1, maxQueueMs: 0 })).toThrow(/maxQueueMs/);
  });
});

describe("SyntheticPredictor", () => {
  it("is deterministic, consistent with its scheme and records batch sizes", async () => {
    const p = new SyntheticPredictor({ buckets: uniformBuckets(400, 4) });
    const [a, b] = await p.predictBatch(["x".repeat(4 * 150), "x".repeat(4 * 150)]);
    expect(a).toEqual(b);
    expect(a!.bucket).toBe(1); // 150 tokens is in [100, 200)
    expect(a!.upperBound).toBe(200);
    expect(a!.probabilities!.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 12);
    expect(Math.max(...a!.probabilities!)).toBe(a!.probabilities![1]);
    await p.predict("y");
    expect(p.batchSizes).toEqual([2, 1]);
  });
});
