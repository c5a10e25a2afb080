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
import { DistilBertModel } from "../src/model/distilbert.js";
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
