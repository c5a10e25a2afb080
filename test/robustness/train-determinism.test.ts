/**
 * Training is deterministic with the default `--threads 2`: the embedding gradient (the one scatter-add in the
 * training graph) must not depend on how onnxruntime splits it across threads. onnxruntime's CPU
 * ScatterND(reduction="add") splits the update rows across the intra-op threads without synchronisation, so
 * repeated ids (every batch repeats tokens) race: lost updates, different weights every run, from about
 * 256 k updated floats per call (e.g. 4096 tokens × dim 64) with 2 threads.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { grad } from "../../src/engine/autodiff.js";
import { Graph } from "../../src/engine/graph.js";
import * as op from "../../src/engine/ops.js";
import { f32, i64, Session } from "../../src/engine/session.js";
import { uniformBuckets } from "../../src/data/buckets.js";
import { runCli, trainInterruptedAtFirstStep } from "../helpers/cli.js";
import { tinyTokenizerJson } from "../helpers/predictor-fixtures.js";
import { tempDir } from "../helpers/tmp.js";

describe("the embedding gradient with 2 intra-op threads", () => {
  it("equals the exact sum over repeated ids and is the same on every run", async () => {
    const V = 50, D = 64, N = 8192; // 524 k updated floats: well above where ScatterND add raced
    const g = new Graph("embedding_grad");
    const table = g.input("table", "float32", [V, D]);
    const ids = g.input("ids", "int64", [N]);
    const w = g.input("w", "float32", [N, D]);
    const loss = op.reduceSum(op.mul(op.gather(table, ids, 0), w), [0, 1]);
    const [dTable] = grad(loss, [table]);
    const s = await Session.create(g.toOnnx({ outputs: { dTable: dTable! } }), { threads: 2 });
    const idv = Array.from({ length: N }, (_, i) => (i * 7919) % 11); // 11 distinct ids, each ~745 times
    const wv = new Float32Array(N * D).map((_, i) => Math.sin(i * 0.37));
    const feeds = { table: f32(new Float32Array(V * D), [V, D]), ids: i64(idv, [N]), w: f32(wv, [N, D]) };
    const exact = new Float64Array(V * D);
    for (let n = 0; n < N; n++) for (let k = 0; k < D; k++) exact[idv[n]! * D + k]! += wv[n * D + k]!;
    const first = Float32Array.from((await s.run(feeds)).dTable!.data as Float32Array);
    let err = 0;
    for (let i = 0; i < exact.length; i++) err = Math.max(err, Math.abs(first[i]! - exact[i]!));
    expect(err).toBeLessThan(1e-3); // float32 rounding of ~745-term sums; a lost update is off by ~1
    for (let r = 0; r < 10; r++) {
      const again = (await s.run(feeds)).dTable!.data as Float32Array;
      expect(Buffer.from(again.buffer, again.byteOffset, again.byteLength).equals(Buffer.from(first.buffer))).toBe(true);
    }
    await s.dispose();
  });
});

describe("lenpred train --threads 2 is deterministic", () => {
  const root = tempDir("lenpred-determinism-");
  const data = join(root, "data");
  const words = ["write", "a", "poem", "essay", "list", "short", "long", "the", "about", "sea", "story", "detailed", "one", "word"];
  {
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, "scheme.json"), JSON.stringify({ buckets: uniformBuckets(256, 4), tokenizer: "bert-base-uncased", specialTokens: true, label: "test", template: "{instruction} {input}" }));
    // Long prompts (≥ 120 tokens) so one batch of 64 × 128 tokens × dim 64 crosses the size where the race showed.
    for (const [split, count] of [["train", 128], ["val", 8]] as const) {
      const lines = Array.from({ length: count }, (_, i) => {
        const prompt = [["list", "write", "essay", "story"][i % 4]!, ...Array.from({ length: 120 + (i % 7) }, (_, j) => words[(i * 3 + j * 5) % words.length])].join(" ");
        const out = (i % 4) * 64 + ((i * 13) % 60);
        return JSON.stringify({ id: `${split}-${i}`, prompt, prompt_tokens: 5, output_tokens: out, output_length_bucket: Math.floor(out / 64) });
      });
      writeFileSync(join(data, `${split}.jsonl`), lines.join("\n") + "\n");
    }
  }
  const tok = join(root, "tokenizer.json");
  writeFileSync(tok, JSON.stringify(tinyTokenizerJson()));
  const config = join(root, "small.json");
  writeFileSync(config, JSON.stringify({ dim: 64, n_layers: 1, n_heads: 2, hidden_dim: 64, max_position_embeddings: 128, dropout: 0.1, attention_dropout: 0.1, seq_classif_dropout: 0.1 }));
  const common = ["--data", data, "--tokenizer", tok, "--config", config, "--epochs", "2", "--lr", "0.01", "--batch-size", "64", "--max-length", "128", "--threads", "2", "--checkpoint-minutes", "0", "--no-progress"];
  const weights = (dir: string) => readFileSync(join(dir, "model.safetensors"));

  it("two identical runs write bit-identical weights, and an interrupted + resumed run equals them", async () => {
    const a = runCli(["train", ...common, "--out", join(root, "a")]);
    expect(a.code, a.stderr + a.stdout).toBe(0);
    const b = runCli(["train", ...common, "--out", join(root, "b")]);
    expect(b.code, b.stderr + b.stdout).toBe(0);
    expect(weights(join(root, "a")).equals(weights(join(root, "b")))).toBe(true);

    // Ctrl-C after the first step (progress on, no TTY: "  step 1/N …" is printed), then --resume.
    const out = join(root, "resumed");
    const code = await trainInterruptedAtFirstStep([...common, "--out", out]);
    expect(code).toBe(130);
    expect(existsSync(join(out, "checkpoint", "state.json"))).toBe(true);
    const r = runCli(["train", "--resume", "--out", out, "--no-progress"]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(weights(out).equals(weights(join(root, "a")))).toBe(true);
  });
});
