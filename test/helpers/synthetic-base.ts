/** A base predictor for online-learning tests: the prompt "len=N ..." predicts N tokens (with bucket probabilities). */
import { bucketCount, bucketOf, upperBound, type BucketScheme } from "../../src/data/buckets.js";
import type { Prediction, Predictor } from "../../src/model/prediction.js";
import { createRng } from "../../src/util/rng.js";

export const SCHEME: BucketScheme = { kind: "uniform", edges: [128, 256, 384, 512, 640, 768, 896, 1024] } as BucketScheme;

export class SyntheticBase implements Predictor {
  readonly name = "synthetic";
  readonly buckets = SCHEME;
  calls = 0;
  async predict(p: string): Promise<Prediction> {
    return (await this.predictBatch([p]))[0]!;
  }
  async predictBatch(prompts: string[]): Promise<Prediction[]> {
    this.calls += prompts.length;
    return prompts.map((p) => {
      const n = Number(/len=(\d+)/.exec(p)?.[1] ?? 50);
      const bucket = bucketOf(SCHEME, n);
      const probabilities = new Array(bucketCount(SCHEME)).fill(0.02);
      probabilities[bucket] = 1 - 0.02 * (probabilities.length - 1);
      return { bucket, upperBound: upperBound(SCHEME, bucket), expectedTokens: n, probabilities };
    });
  }
}

/** A stream whose true lengths are `scale` × the base prediction × log-normal noise (σ). */
export function syntheticStream(n: number, scale: number, sigma: number, seed: number, model?: string): { prompt: string; output_tokens: number; model?: string }[] {
  const rng = createRng(seed);
  const out = [];
  for (let i = 0; i < n; i++) {
    const base = 20 + Math.floor(rng.next() * 200);
    const u1 = Math.max(1e-12, rng.next()), u2 = rng.next();
    const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    const y = Math.max(1, Math.round(scale * base * Math.exp(sigma * z)));
    out.push({ prompt: `len=${base} request ${i}`, output_tokens: y, ...(model ? { model } : {}) });
  }
  return out;
}
