import { describe, expect, it } from "vitest";
import { uniformBuckets, type BucketScheme } from "../src/data/buckets.js";
import { kendallTauB } from "../src/metrics/kendall.js";
import { computeMetrics, type PointPrediction } from "../src/metrics/metrics.js";
import { createRng } from "../src/util/rng.js";

/** Textbook O(n²) τ-b, an independent reference for the O(n log n) implementation. */
function bruteTauB(x: number[], y: number[]): number {
  let c = 0, d = 0, tx = 0, ty = 0;
  for (let i = 0; i < x.length; i++) {
    for (let j = i + 1; j < x.length; j++) {
      const sx = Math.sign(x[i]! - x[j]!), sy = Math.sign(y[i]! - y[j]!);
      if (sx === 0 && sy === 0) continue;
      if (sx === 0) tx++;
      else if (sy === 0) ty++;
      else if (sx === sy) c++;
      else d++;
    }
  }
  return (c - d) / Math.sqrt((c + d + tx) * (c + d + ty));
}

describe("kendallTauB", () => {
  it("matches scipy's documented example with ties", () => {
    // scipy.stats.kendalltau([12, 2, 1, 12, 2], [1, 4, 7, 1, 0]).statistic
    expect(kendallTauB([12, 2, 1, 12, 2], [1, 4, 7, 1, 0])).toBeCloseTo(-0.47140452079103173, 12);
  });

  it("agrees with the O(n²) definition on random data with many ties", () => {
    const rng = createRng(7);
    for (const [n, levels] of [[2, 3], [7, 2], [50, 5], [300, 20], [301, 1000]] as const) {
      const x = Array.from({ length: n }, () => rng.int(levels));
      const y = x.map((v) => (rng.next() < 0.5 ? v : rng.int(levels)));
      if (new Set(x).size < 2 || new Set(y).size < 2) continue;
      expect(kendallTauB(x, y)).toBeCloseTo(bruteTauB(x, y), 10);
    }
  });

  it("is ±1 for monotone relations and NaN for a constant variable", () => {
    expect(kendallTauB([1, 2, 3, 4], [10, 20, 30, 40])).toBeCloseTo(1, 12);
    expect(kendallTauB([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1, 12);
    expect(kendallTauB([5, 5, 5], [1, 2, 3])).toBeNaN();
  });
});

function pred(scheme: BucketScheme, bucket: number, expectedTokens: number): PointPrediction {
  return { bucket, upperBound: scheme.edges[bucket]!, expectedTokens };
}

describe("computeMetrics", () => {
  const s = uniformBuckets(300, 3); // edges 100, 200, 300
  // actual tokens and their buckets
  const y = [10, 90, 150, 250, 120, 40];
  const yb = [0, 0, 1, 2, 1, 0];
  const p = [pred(s, 0, 60), pred(s, 1, 140), pred(s, 1, 150), pred(s, 0, 50), pred(s, 2, 221), pred(s, 0, 40)];
  const r = computeMetrics(s, y, yb, p);

  it("counts bucket agreement, within-one and the confusion matrix", () => {
    expect(r.n).toBe(6);
    expect(r.bucketAccuracy).toBeCloseTo(3 / 6); // records 0, 2, 5
    expect(r.withinOneBucketAccuracy).toBeCloseTo(5 / 6); // record 3 is two buckets off
    expect(r.confusion).toEqual([[2, 1, 0], [0, 1, 1], [1, 0, 0]]);
  });

  it("computes macro-F1 as the unweighted mean of per-bucket F1", () => {
    // bucket 0: tp 2, predicted 3, support 3 → P = R = 2/3; bucket 1: tp 1, pred 2, support 2 → 1/2;
    // bucket 2: tp 0 → F1 0.
    expect(r.perBucket.map((b) => b.f1)).toEqual([expect.closeTo(2 / 3, 12), expect.closeTo(0.5, 12), 0]);
    expect(r.macroF1).toBeCloseTo((2 / 3 + 0.5 + 0) / 3, 12);
  });

  it("computes token errors and the Sequence-Scheduling accuracies (inclusive thresholds)", () => {
    const d = [50, 50, 0, 200, 101, 0];
    expect(r.mae).toBeCloseTo(d.reduce((a, b) => a + b) / 6, 12);
    expect(r.error).toBe(r.mae);
    expect(r.rmse).toBeCloseTo(Math.sqrt(d.reduce((a, b) => a + b * b, 0) / 6), 12);
    expect(r.acc50).toBeCloseTo(4 / 6); // |d| = 50 counts
    expect(r.acc100).toBeCloseTo(4 / 6); // 101 and 200 do not
  });

  it("computes under-allocation and the unused share of reserved tokens", () => {
    // upper bounds 100, 200, 200, 100, 300, 100; only record 3 (250 > 100) is under-allocated
    expect(r.underAllocationRate).toBeCloseTo(1 / 6);
    const reserved = 100 + 200 + 200 + 100 + 300 + 100;
    const unused = 90 + 110 + 50 + 0 + 180 + 60;
    expect(r.overAllocationWaste).toBeCloseTo(unused / reserved, 12);
    expect(r.meanReserved).toBeCloseTo(reserved / 6);
    expect(r.kendallTauB).toBeCloseTo(bruteTauB(p.map((q) => q.expectedTokens), y), 12);
  });

  it("computes log-loss only when every prediction has probabilities (renormalised)", () => {
    expect(r.logLoss).toBeUndefined();
    const withP = p.map((q, i) => ({ ...q, probabilities: i === 0 ? [2, 1, 1] : [0.5, 0.25, 0.25] }));
    const m = computeMetrics(s, y, yb, withP);
    // true buckets 0,0,1,2,1,0 → p = 0.5 for bucket 0, 0.25 otherwise (record 0 renormalised from [2,1,1])
    expect(m.logLoss).toBeCloseTo(-(3 * Math.log(0.5) + 3 * Math.log(0.25)) / 6, 12);
    expect(computeMetrics(s, y, yb, withP.map((q, i) => (i === 2 ? { ...q, probabilities: undefined } : q))).logLoss).toBeUndefined();
  });

  it("leaves buckets absent on both sides out of macro-F1", () => {
    const s4 = uniformBuckets(400, 4);
    const m = computeMetrics(s4, [10, 150], [0, 1], [pred(s4, 0, 10), pred(s4, 1, 150)]);
    expect(m.macroF1).toBe(1);
    expect(m.perBucket[3]!.support).toBe(0);
  });

  it("rejects mismatched lengths and out-of-range buckets", () => {
    expect(() => computeMetrics(s, [1, 2], [0, 0], [pred(s, 0, 1)])).toThrow(/length mismatch/);
    expect(() => computeMetrics(s, [1], [0], [{ bucket: 3, upperBound: 1, expectedTokens: 1 }])).toThrow(/out of range/);
  });
});
