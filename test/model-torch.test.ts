/**
 * Cross-check with PyTorch (optional: needs Debian python3-torch at /usr/bin/python3, skipped otherwise):
 * test/reference/torch_distilbert.py reads a saved model directory by the safetensors spec and HF's config
 * field names, runs HF's DistilBERT forward with torch.nn.functional, and must match the engine within 1e-4
 * for F32, F16 and BF16 storage.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { uniformBuckets } from "../src/data/buckets.js";
import { loadModelDir, saveModelDir } from "../src/model/checkpoint.js";
import { PRESETS, type DistilBertConfig } from "../src/model/config.js";
import { f32ToBf16Bits, f32ToF16Bits } from "../src/model/half.js";
import { DistilBertModel } from "../src/model/distilbert-trainable.js";
import { initParams } from "../src/model/params.js";
import { repoRoot } from "../src/util/paths.js";
import { tempDir } from "./helpers/tmp.js";

const PY = "/usr/bin/python3";
const hasTorch = existsSync(PY) && spawnSync(PY, ["-c", "import torch"]).status === 0;
if (!hasTorch) console.warn("model-torch.test.ts: skipped (no python3-torch; apt-get install -y python3-torch libopenblas0)");

const C: DistilBertConfig = { ...PRESETS.tiny!, vocab_size: 70, dim: 24, n_layers: 2, n_heads: 3, hidden_dim: 40, max_position_embeddings: 16, num_labels: 4 };

describe.skipIf(!hasTorch)("PyTorch reads lenpred model directories", () => {
  const dir = tempDir();
  const models: DistilBertModel[] = [];
  afterAll(async () => { for (const m of models) await m.dispose(); });

  it("float16/bfloat16 rounding is bit-identical to torch's .half() / .bfloat16()", () => {
    // Random magnitudes across the whole half range, exact ties, subnormals, overflow (-0 cannot pass through JSON; half.ts tests cover it).
    const vals: number[] = [0, 1, 65504, 65519.99, 65520, 1e-8, 2 ** -25, 3 * 2 ** -25, 2 ** -24 * 1.5, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, -3.14159];
    let s = 1;
    for (let i = 0; i < 3000; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      const m = (s / 2 ** 32) * 2 - 1;
      vals.push(Math.fround(m * 2 ** ((i % 40) - 26)));
    }
    const r = spawnSync(PY, [join(repoRoot, "test", "reference", "torch_distilbert.py"), "--round"], { input: JSON.stringify(vals), encoding: "utf8", timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const t = JSON.parse(r.stdout) as { f16: number[]; bf16: number[] };
    const mism: string[] = [];
    vals.forEach((v, i) => {
      if (f32ToF16Bits(v) !== t.f16[i]) mism.push(`f16 ${v}: ${f32ToF16Bits(v)} vs torch ${t.f16[i]}`);
      if (f32ToBf16Bits(v) !== t.bf16[i]) mism.push(`bf16 ${v}: ${f32ToBf16Bits(v)} vs torch ${t.bf16[i]}`);
    });
    expect(mism.slice(0, 5)).toEqual([]);
  });

  for (const dtype of ["F32", "F16", "BF16"] as const) {
    it(`${dtype}: torch logits match the engine within 1e-4`, async () => {
      const params = initParams(C, 7);
      for (const [k, t] of params) if (k.endsWith("weight") && !/LayerNorm|layer_norm/.test(k)) t.data.forEach((v, i) => (t.data[i] = v * 8));
      const mdir = join(dir, dtype);
      await saveModelDir(mdir, { config: C, params, meta: { buckets: uniformBuckets(400, 4), tokenizer: "bert-base-uncased" }, dtype, onnx: false });
      const loaded = await loadModelDir(mdir);
      const model = await DistilBertModel.create(loaded.config, { params: loaded.params });
      models.push(model);
      const ids = [[2, 5, 9, 33, 61, 7], [2, 14, 3, 0, 0, 0]];
      const mask = [[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]];
      const engine = await model.forward({
        batch: 2, seqLen: 6,
        inputIds: BigInt64Array.from(ids.flat(), BigInt), attentionMask: BigInt64Array.from(mask.flat(), BigInt),
      });
      const r = spawnSync(PY, [join(repoRoot, "test", "reference", "torch_distilbert.py"), mdir], { input: JSON.stringify({ ids, mask }), encoding: "utf8", timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as { logits: number[][]; missing: string[]; unexpected: string[] };
      expect(out.missing).toEqual([]);
      expect(out.unexpected).toEqual([]);
      const flat = out.logits.flat();
      expect(flat.length).toBe(8);
      let spread = 0;
      for (let i = 0; i < 8; i++) {
        expect(Math.abs(flat[i]! - engine[i]!)).toBeLessThan(1e-4);
        spread = Math.max(spread, Math.abs(flat[i]!));
      }
      expect(spread).toBeGreaterThan(0.05);
    });
  }
});
