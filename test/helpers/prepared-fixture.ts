/** Small synthetic prepared directories for metrics/eval/baseline tests (no ../shared needed). */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bucketOf, uniformBuckets, type BucketScheme } from "../../src/data/buckets.js";
import type { PreparedRecord, PreparedScheme } from "../../src/data/records.js";
import { createRng } from "../../src/util/rng.js";

export function writePrepared(dir: string, splits: Partial<Record<"train" | "val" | "test", PreparedRecord[]>>, buckets: BucketScheme = uniformBuckets(512, 4)): PreparedScheme {
  mkdirSync(dir, { recursive: true });
  const scheme: PreparedScheme = { buckets, tokenizer: "test-words", specialTokens: false, label: "synthetic", template: "{instruction}" };
  writeFileSync(join(dir, "scheme.json"), JSON.stringify(scheme));
  for (const [name, recs] of Object.entries(splits)) writeFileSync(join(dir, `${name}.jsonl`), recs!.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return scheme;
}

const SHORT = ["classify", "name", "identify", "convert", "rewrite"];
const LONG = ["write an essay about", "compose a story about", "explain in detail", "describe at length"];
const TOPICS = ["the ocean", "a cat", "climate change", "the moon", "democracy", "pizza", "rivers", "music"];

/**
 * Records whose output length is driven by the prompt's verb (short vs long tasks) plus noise, like the
 * real data in miniature: a text model can learn it, a prompt-blind one cannot.
 */
export function syntheticRecords(n: number, seed: number, buckets: BucketScheme = uniformBuckets(512, 4)): PreparedRecord[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, (_, i) => {
    const long = rng.next() < 0.3;
    const verb = long ? LONG[rng.int(LONG.length)]! : SHORT[rng.int(SHORT.length)]!;
    const prompt = `${verb} ${TOPICS[rng.int(TOPICS.length)]!}`;
    const out = long ? 250 + rng.int(200) : 5 + rng.int(40);
    return { id: `r${seed}-${i}`, prompt, prompt_tokens: prompt.split(" ").length, output_tokens: out, output_length_bucket: bucketOf(buckets, out) };
  });
}
