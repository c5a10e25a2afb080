import { describe, expect, it } from "vitest";
import { FcfsQueue, QueueFullError, Scheduler, sjfKey, SjfQueue, type Job, type Ticket } from "../src/proxy/scheduler.js";

interface J extends Job {
  name: string;
}
const job = (name: string, expectedTokens: number, reserveTokens = expectedTokens, promptTokens = 0): J => ({ name, expectedTokens, reserveTokens, promptTokens });

/** A scheduler on a manual clock that records the admission order. */
function harness(opts: Partial<ConstructorParameters<typeof Scheduler>[0]> & { policy: "fcfs" | "sjf" | "s3" }) {
  let clock = 0;
  const admitted: string[] = [];
  const s = new Scheduler<J>({ maxConcurrency: 1, maxQueue: 100, now: () => clock, ...opts });
  const tickets = new Map<string, Ticket<J>>();
  return {
    s,
    admitted,
    tickets,
    at(ms: number) {
      clock = ms;
    },
    add(j: J) {
      tickets.set(j.name, s.enqueue(j, () => admitted.push(j.name)));
    },
    done(name: string) {
      s.release(tickets.get(name)!);
    },
  };
}

describe("queue policies", () => {
  it("fcfs keeps arrival order, and remove() takes a ticket out of the middle", () => {
    const q = new FcfsQueue<J>();
    const t = (n: string, seq: number): Ticket<J> => ({ job: job(n, 1), seq, enqueuedAt: 0, reserved: 0, state: "queued" });
    const a = t("a", 0), b = t("b", 1), c = t("c", 2);
    q.push(a); q.push(b); q.push(c);
    expect(q.remove(b)).toBe(true);
    expect(q.remove(b)).toBe(false);
    expect([q.shift()?.job.name, q.shift()?.job.name, q.shift()]).toEqual(["a", "c", undefined]);
  });

  it("sjf orders by predicted length, ties by arrival", () => {
    const q = new SjfQueue<J>(10);
    const names = [["x", 300], ["y", 20], ["z", 20], ["w", 5]] as const;
    names.forEach(([n, e], i) => q.push({ job: job(n, e), seq: i, enqueuedAt: 0, reserved: 0, state: "queued" }));
    expect([1, 2, 3, 4].map(() => q.shift()!.job.name)).toEqual(["w", "y", "z", "x"]);
  });

  it("sjf key: waiting one half-life is worth halving the prediction", () => {
    expect(sjfKey(256, 0, 10)).toBeCloseTo(8);
    expect(sjfKey(128, 10_000, 10)).toBeCloseTo(sjfKey(256, 0, 10));
    expect(sjfKey(0, 0, 10)).toBe(0); // clamped to 1 token
    expect(sjfKey(Number.NaN, 0, 10)).toBe(20); // no usable prediction: very long, not short
  });
});

describe("Scheduler", () => {
  it("admits at most maxConcurrency and refuses beyond maxQueue", () => {
    const h = harness({ policy: "fcfs", maxConcurrency: 2, maxQueue: 2 });
    h.add(job("a", 1)); h.add(job("b", 1)); h.add(job("c", 1)); h.add(job("d", 1));
    expect(h.admitted).toEqual(["a", "b"]);
    expect(() => h.add(job("e", 1))).toThrow(QueueFullError);
    h.done("a");
    expect(h.admitted).toEqual(["a", "b", "c"]);
    expect(h.s.inFlight).toBe(2);
    expect(h.s.queued).toBe(1);
  });

  it("fcfs serves in arrival order whatever the predictions", () => {
    const h = harness({ policy: "fcfs" });
    h.add(job("run", 1));
    for (const [n, e] of [["long", 900], ["short", 10], ["mid", 100]] as const) h.add(job(n, e));
    for (const n of ["run", "long", "short", "mid"]) h.done(n);
    expect(h.admitted).toEqual(["run", "long", "short", "mid"]);
  });

  it("sjf serves the shortest predicted first", () => {
    const h = harness({ policy: "sjf" });
    h.add(job("run", 1));
    for (const [n, e] of [["long", 900], ["short", 10], ["mid", 100]] as const) h.add(job(n, e));
    for (const n of ["run", "short", "mid", "long"]) h.done(n);
    expect(h.admitted).toEqual(["run", "short", "mid", "long"]);
  });

  it("sjf aging: a long request is not starved by later short ones", () => {
    // half-life 1 s: "long" (1024 tokens, key 10 at t=0) beats any request arriving after t = 10 s.
    const h = harness({ policy: "sjf", agingHalfLifeSeconds: 1 });
    h.add(job("run", 1));
    h.add(job("long", 1024));
    h.at(5_000);
    h.add(job("early-short", 1)); // key 5 < 10: still goes first
    h.at(10_500);
    h.add(job("late-short", 1)); // key 10.5 > 10: after "long"
    for (const n of ["run", "early-short", "long", "late-short"]) h.done(n);
    expect(h.admitted).toEqual(["run", "early-short", "long", "late-short"]);
  });

  it("a queued ticket can be cancelled; a running one is released", () => {
    const h = harness({ policy: "sjf" });
    h.add(job("run", 1)); h.add(job("a", 5)); h.add(job("b", 50));
    h.s.cancel(h.tickets.get("a")!);
    expect(h.tickets.get("a")!.state).toBe("cancelled");
    h.s.cancel(h.tickets.get("run")!);
    expect(h.admitted).toEqual(["run", "b"]);
    expect(h.s.queued).toBe(0);
  });

  it("s3 admits while prompt + reserve tokens of in-flight requests fit the budget, without bypassing the head", () => {
    const h = harness({ policy: "s3", maxConcurrency: 10, kvBudgetTokens: 1000 });
    h.add(job("a", 300, 400, 100)); // 500
    h.add(job("b", 300, 300, 100)); // 400 → 900
    h.add(job("c", 350, 350, 100)); // 450: does not fit
    h.add(job("d", 400, 400, 100)); // 500: behind c (larger prediction), waits too
    expect(h.admitted).toEqual(["a", "b"]);
    expect(h.s.reservedTokens).toBe(900);
    h.done("b"); // 500 reserved → c fits (950), d does not
    expect(h.admitted).toEqual(["a", "b", "c"]);
    h.done("a");
    expect(h.admitted).toEqual(["a", "b", "c", "d"]);
    expect(h.s.reservedTokens).toBe(950);
  });

  it("s3 admits a request bigger than the whole budget when nothing else runs", () => {
    const h = harness({ policy: "s3", maxConcurrency: 10, kvBudgetTokens: 100 });
    h.add(job("small", 10));
    h.add(job("huge", 5000));
    expect(h.admitted).toEqual(["small"]);
    h.done("small");
    expect(h.admitted).toEqual(["small", "huge"]);
  });

  it("s3 extends an outgrown reservation (doubling), counts it, and the extension holds back admissions", () => {
    const h = harness({ policy: "s3", maxConcurrency: 10, kvBudgetTokens: 1000 });
    h.add(job("a", 100, 100, 50)); // 150
    const a = h.tickets.get("a")!;
    expect(h.s.extend(a, 100)).toBe(false);
    expect(h.s.extend(a, 101)).toBe(true); // → 200 output tokens reserved
    expect(a.reserved).toBe(250);
    expect(h.s.extend(a, 150)).toBe(false);
    expect(h.s.extend(a, 900)).toBe(true); // → max(900, 400)
    expect(a.reserved).toBe(950);
    expect(h.s.extensions).toBe(2);
    h.add(job("b", 40, 40, 20)); // 60 > 50 left
    expect(h.admitted).toEqual(["a"]);
    h.done("a");
    expect(h.admitted).toEqual(["a", "b"]);
    expect(h.s.reservedTokens).toBe(60);
  });

  it("refuses bad options", () => {
    expect(() => new Scheduler({ policy: "s3", maxConcurrency: 1, maxQueue: 1 })).toThrow(/kvBudgetTokens/);
    expect(() => new Scheduler({ policy: "fcfs", maxConcurrency: 0, maxQueue: 1 })).toThrow(/maxConcurrency/);
    expect(() => new Scheduler({ policy: "lifo" as never, maxConcurrency: 1, maxQueue: 1 })).toThrow(/unknown policy/);
  });
});
