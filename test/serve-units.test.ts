/** Pure parts of `lenpred serve`: quantile buckets, the chat → prompt rule, error field names, the micro-batcher. */
import { describe, expect, it } from "vitest";
import { uniformBuckets } from "../src/data/buckets.js";
import type { Prediction, Predictor } from "../src/predictor/types.js";
import { MicroBatcher, QueueFullError, ShuttingDownError } from "../src/serve/batcher.js";
import { chatPrompt, ChatPromptError } from "../src/serve/chat.js";
import { applyQuantile, quantileBucket } from "../src/serve/quantile.js";
import { fieldFromPointer } from "../src/serve/server.js";
import { SyntheticPredictor } from "../src/serve/synthetic.js";
import { createRng } from "../src/util/rng.js";

/** Reference: sort-free brute force — the first b whose prefix sum, recomputed from scratch, reaches q·total. */
function referenceQuantile(p: number[], q: number): number {
  const total = p.reduce((a, b) => a + b, 0);
  for (let b = 0; b < p.length; b++) {
    if (p.slice(0, b + 1).reduce((a, x) => a + x, 0) >= q * total) return b;
  }
  return p.length - 1;
}

describe("quantileBucket", () => {
  it("picks the smallest bucket whose cumulative probability reaches q", () => {
    const p = [0.1, 0.2, 0.3, 0.4];
    expect(quantileBucket(p, 0.05)).toBe(0);
    expect(quantileBucket(p, 0.1)).toBe(0);
    expect(quantileBucket(p, 0.11)).toBe(1);
    expect(quantileBucket(p, 0.5)).toBe(2);
    expect(quantileBucket(p, 0.61)).toBe(3);
    expect(quantileBucket(p, 1)).toBe(3);
  });

  it("agrees with a brute-force reference on random distributions", () => {
    const rng = createRng("quantile");
    for (let t = 0; t < 500; t++) {
      const n = 1 + rng.int(12);
      const raw = Array.from({ length: n }, () => (rng.next() < 0.2 ? 0 : rng.next()));
      if (!raw.some((x) => x > 0)) raw[0] = 1;
      const sum = raw.reduce((a, b) => a + b, 0);
      const p = raw.map((x) => x / sum);
      const q = Math.max(1e-6, rng.next());
      expect(quantileBucket(p, q)).toBe(referenceQuantile(p, q));
    }
  });

  it("never returns a zero-probability tail bucket for q = 1 despite rounding", () => {
    // 0.1 × 10 sums to 0.9999999999999999 in floating point; trailing zeros must not be chosen.
    const p = [...Array(10).fill(0.1), 0, 0];
    expect(quantileBucket(p, 1)).toBe(9);
  });

  it("normalises unnormalised probabilities and is monotone in q", () => {
    const p = [2, 0, 6, 2];
    expect(quantileBucket(p, 0.2)).toBe(0);
    expect(quantileBucket(p, 0.21)).toBe(2);
    let last = 0;
    for (let q = 0.01; q <= 1; q += 0.01) {
      const b = quantileBucket(p, q);
      expect(b).toBeGreaterThanOrEqual(last);
      last = b;
    }
  });

  it("rejects q outside (0, 1] and bad vectors", () => {
    expect(() => quantileBucket([1], 0)).toThrow(/quantile/);
    expect(() => quantileBucket([1], 1.01)).toThrow(/quantile/);
    expect(() => quantileBucket([1], Number.NaN)).toThrow(/quantile/);
    expect(() => quantileBucket([0, 0], 0.5)).toThrow(/zero/);
    expect(() => quantileBucket([0.5, -0.1], 0.5)).toThrow(/>= 0/);
    expect(() => quantileBucket([0.5, Number.NaN], 0.5)).toThrow(/finite/);
  });

  it("applyQuantile moves bucket and upperBound, keeps expectedTokens", () => {
    const scheme = uniformBuckets(200, 4);
    const pred: Prediction = { bucket: 0, upperBound: 50, expectedTokens: 70, probabilities: [0.5, 0.3, 0.15, 0.05] };
    expect(applyQuantile(pred, scheme, 0.5)).toEqual({ ...pred, bucket: 0, upperBound: 50 });
    expect(applyQuantile(pred, scheme, 0.9)).toEqual({ ...pred, bucket: 2, upperBound: 150 });
    expect(() => applyQuantile({ bucket: 0, upperBound: 50, expectedTokens: 1 }, scheme, 0.9)).toThrow(/no probabilities/);
    expect(() => applyQuantile({ ...pred, probabilities: [1] }, scheme, 0.9)).toThrow(/1 probabilities for 4 buckets/);
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
  private gates: Array<() => void> = [];
  fail = false;
  async predict(p: string) {
    return (await this.predictBatch([p]))[0]!;
  }
  async predictBatch(prompts: string[]): Promise<Prediction[]> {
    this.sizes.push(prompts.length);
    await new Promise<void>((r) => this.gates.push(r));
    if (this.fail) throw new Error("model exploded");
    return prompts.map((p) => ({ bucket: 0, upperBound: 25, expectedTokens: p.length }));
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
    await until(() => p.waiting === 1);
    p.release();
    await expect(bad).rejects.toThrow(/exploded/);
    p.fail = false;
    const good = b.submit(["ok"]);
    await until(() => p.waiting === 1);
    p.release();
    expect((await good)[0]!.expectedTokens).toBe(2);
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
