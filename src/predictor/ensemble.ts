/**
 * `kind: "ensemble"`: a model directory that lists member model directories (any kind, stored inside it)
 * and averages their predictions. lenpred.json:
 *
 *   { "kind": "ensemble", "buckets": …, "tokenizer": …,
 *     "members": [{ "dir": "ngram", "weight": 1 }, { "dir": "distilbert", "weight": 1 }] }
 *
 * Combination (weights are normalised):
 *  - expectedTokens = expm1(Σ w·log1p(member expectedTokens)): a weighted geometric mean of (1 + tokens),
 *    because length errors are multiplicative and the members are trained on log lengths;
 *  - probabilities = Σ w·p over the members that give probabilities (weights renormalised over them);
 *    absent when no member gives any;
 *  - bucket = argmax of those probabilities, or the bucket holding expectedTokens when there are none.
 */
import { resolve } from "node:path";
import { bucketCount, bucketOf, upperBound, type BucketScheme } from "../data/buckets.js";
import { LenpredError } from "../util/errors.js";
import { metaFileOf, modelSubdir, type ModelMeta } from "../model-dir/index.js";
import type { Prediction, Predictor } from "../model/prediction.js";

export interface EnsembleMember {
  predictor: Predictor;
  weight: number;
}

export class EnsemblePredictor implements Predictor {
  readonly name = "ensemble";
  private readonly weights: number[];

  constructor(readonly buckets: BucketScheme, readonly members: EnsembleMember[]) {
    if (members.length === 0) throw new LenpredError("an ensemble needs at least one member");
    const total = members.reduce((s, m) => s + m.weight, 0);
    this.weights = members.map((m) => m.weight / total);
  }

  /** `loadMember` opens a member directory of any kind (the kind registry's loadPredictor). */
  static async load(meta: ModelMeta, dir: string, loadMember: (dir: string) => Promise<Predictor>): Promise<EnsemblePredictor> {
    const file = metaFileOf(dir);
    const list = meta.members;
    if (!Array.isArray(list) || list.length === 0) throw new LenpredError("expected a non-empty array of {dir, weight?}", { file, field: "members" });
    const root = resolve(dir);
    const members: EnsembleMember[] = [];
    try {
      for (const [i, m] of list.entries()) {
        const field = `members[${i}]`;
        const entry = m as { dir?: unknown; weight?: unknown };
        if (typeof entry?.dir !== "string") throw new LenpredError("expected {dir: string, weight?: number}", { file, field });
        const weight = entry.weight ?? 1;
        if (typeof weight !== "number" || !(weight > 0) || !Number.isFinite(weight)) throw new LenpredError(`weight must be a positive number, got ${JSON.stringify(weight)}`, { file, field: `${field}.weight` });
        // Members live inside the ensemble directory so that it can be copied or committed as one unit.
        const memberDir = modelSubdir(root, entry.dir, { from: { file, field: `${field}.dir` }, missing: "not a lenpred model directory (no such member directory)" });
        const predictor = await loadMember(memberDir);
        members.push({ predictor, weight });
        if (!sameEdges(predictor.buckets, meta.buckets)) {
          throw new LenpredError(`member '${entry.dir}' has buckets [${predictor.buckets.edges.join(", ")}], the ensemble [${meta.buckets.edges.join(", ")}]`, { file, field: `${field}.dir` });
        }
      }
    } catch (e) {
      await Promise.all(members.map((m) => m.predictor.dispose?.()));
      throw e;
    }
    return new EnsemblePredictor(meta.buckets, members);
  }

  async predict(prompt: string): Promise<Prediction> {
    return (await this.predictBatch([prompt]))[0]!;
  }

  async predictBatch(prompts: string[]): Promise<Prediction[]> {
    const outs = await Promise.all(this.members.map((m) => m.predictor.predictBatch(prompts)));
    return prompts.map((_, j) => this.combine(outs.map((o) => o[j]!)));
  }

  /** Combine the members' predictions of one prompt (exported for tests through the instance). */
  combine(preds: Prediction[]): Prediction {
    const k = bucketCount(this.buckets);
    let logSum = 0;
    let probWeight = 0;
    const probs = new Array<number>(k).fill(0);
    preds.forEach((p, i) => {
      const w = this.weights[i]!;
      logSum += w * Math.log1p(Math.max(0, p.expectedTokens));
      if (p.probabilities) {
        probWeight += w;
        p.probabilities.forEach((x, b) => (probs[b]! += w * x));
      }
    });
    const expectedTokens = Math.expm1(logSum);
    if (probWeight === 0) {
      const bucket = bucketOf(this.buckets, expectedTokens);
      return { bucket, upperBound: upperBound(this.buckets, bucket), expectedTokens };
    }
    const probabilities = probs.map((x) => x / probWeight);
    let bucket = 0;
    for (let b = 1; b < k; b++) if (probabilities[b]! > probabilities[bucket]!) bucket = b;
    return { bucket, upperBound: upperBound(this.buckets, bucket), expectedTokens, probabilities };
  }

  async dispose(): Promise<void> {
    await Promise.all(this.members.map((m) => m.predictor.dispose?.()));
  }
}

function sameEdges(a: BucketScheme, b: BucketScheme): boolean {
  return a.edges.length === b.edges.length && a.edges.every((e, i) => e === b.edges[i]);
}
