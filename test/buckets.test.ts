import { describe, expect, it } from "vitest";
import { bucketOf, logBuckets, percentileBuckets, uniformBuckets, upperBound } from "../src/data/buckets.js";

describe("bucket schemes", () => {
  it("uniform 1024/8 matches the reference min(len // 128, 7)", () => {
    const s = uniformBuckets(1024, 8);
    for (const n of [0, 1, 127, 128, 255, 256, 1023, 1024, 5000]) expect(bucketOf(s, n)).toBe(Math.min(Math.floor(n / 128), 7));
    expect(upperBound(s, 0)).toBe(128);
    expect(upperBound(s, 7)).toBe(1024);
  });
  it("log and percentile edges increase strictly and end at max length", () => {
    for (const s of [logBuckets(1024, 8), percentileBuckets([1, 1, 1, 2, 3, 50, 60, 700], 4, 1024)]) {
      expect(s.edges[s.edges.length - 1]).toBe(1024);
      for (let i = 1; i < s.edges.length; i++) expect(s.edges[i]).toBeGreaterThan(s.edges[i - 1]!);
    }
  });
  it("percentile buckets put equal mass in each bucket", () => {
    const lens = Array.from({ length: 1000 }, (_, i) => i);
    const s = percentileBuckets(lens, 4, 2000);
    const counts = [0, 0, 0, 0];
    for (const n of lens) counts[bucketOf(s, n)]!++;
    expect(counts).toEqual([250, 250, 250, 250]);
  });
});
