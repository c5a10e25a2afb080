/**
 * `npm run bench:engine [-- --json] [--no-peer] [--runs 5] [--threads 2] [--mode split|fused]`
 *
 * DistilBERT-base (6 × 768, 12 heads, random init) on lenpred's engine: training step (forward + loss +
 * backward + AdamW) at batch 32 × 40 and 32 × 64 tokens, inference throughput at 32 × 40, single-prompt
 * latency (1 × 40), peak RSS, and achieved GFLOP/s next to a plain onnxruntime MatMul measured in the same
 * run, plus the optional int8 export's forward and single-prompt numbers. When the PyTorch peer
 * (../shared/bench/peer_torch_distilbert.py, Debian `python3-torch libopenblas0`; python from
 * $LENPRED_PEER_PYTHON, default python3) is installed it runs in the same invocation and the table shows
 * engine/peer ratios; a peer on the reference BLAS is detected by a matmul probe and skipped (bench/lib/peer.ts). Timings are medians of `--runs` after
 * warm-up. With `--json` the last line of output is one JSON object.
 */
import { Graph } from "../../src/engine/graph.js";
import * as op from "../../src/engine/ops.js";
import { f32, i64, Session } from "../../src/engine/session.js";
import { PRESETS, type DistilBertConfig } from "../../src/model/config.js";
import { DistilBertModel } from "../../src/model/distilbert-trainable.js";
import { buildInferenceOnnx } from "../../src/model/export-onnx.js";
import { initParams } from "../../src/model/params.js";
import { median, round, runMain, syntheticIds } from "../lib/common.js";
import { runPeer } from "../lib/peer.js";

interface Args { json: boolean; peer: boolean; runs: number; threads: number; mode: "split" | "fused" }

function parseArgs(argv: string[]): Args {
  const a: Args = { json: false, peer: true, runs: 5, threads: 2, mode: "split" };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (k === "--json") a.json = true;
    else if (k === "--no-peer") a.peer = false;
    else if (k === "--runs") a.runs = Math.max(1, Number(argv[++i]));
    else if (k === "--threads") a.threads = Math.max(1, Number(argv[++i]));
    else if (k === "--mode") a.mode = argv[++i] === "fused" ? "fused" : "split";
    else if (k === "--help" || k === "-h") {
      console.log([
        "usage: npm run bench:engine -- [--json] [--no-peer] [--runs N] [--threads N] [--mode split|fused]",
        "DistilBERT-base on lenpred's engine: training step at 32×40 and 32×64, forward seq/s at 32×40, single-prompt",
        "latency (float32 model.onnx and the int8 export), peak RSS, GFLOP/s next to a plain ORT MatMul; runs the",
        "PyTorch peer (../shared/bench/peer_torch_distilbert.py) when python3-torch + libopenblas0 are installed and prints",
        "ratios (python: $LENPRED_PEER_PYTHON, default python3; a peer on the slow reference BLAS is skipped, one line).",
        "  --json       last line of output is one JSON object",
        "  --no-peer    skip the PyTorch peer",
        "  --runs N     timed runs per measurement, median reported (default 5, after warm-up)",
        "  --threads N  onnxruntime intra-op threads, also the peer's BLAS threads (default 2)",
        "  --mode M     engine AdamW layout: split (default) or fused",
      ].join("\n"));
      process.exit(0);
    } else throw new Error(`unknown option ${k}`);
  }
  return a;
}

const log = (args: Args, msg: string) => { if (!args.json) console.error(msg); };

async function medianTime(fn: () => Promise<unknown>, warmup: number, runs: number): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    times.push((performance.now() - t) / 1000);
  }
  return median(times);
}

/**
 * Matmul FLOPs (2 per multiply-add) of one forward pass as the engine computes it: full layers, then a last
 * layer whose keys/values cover every token but whose queries, attention output and FFN run on [CLS] only.
 */
export function forwardFlops(c: DistilBertConfig, batch: number, seq: number): number {
  const t = batch * seq;
  const d = c.dim;
  const full = 2 * t * (4 * d * d + 2 * d * c.hidden_dim) + 2 * 2 * batch * seq * seq * d;
  const last = 2 * t * 2 * d * d + 2 * batch * (2 * d * d + 2 * d * c.hidden_dim) + 2 * 2 * batch * seq * d;
  const head = 2 * batch * (d * d + d * c.num_labels);
  return (c.n_layers - 1) * full + last + head;
}

/**
 * Matmul FLOPs of the inference export's forward (src/model/inference-graph.ts): as `forwardFlops`, but the
 * last layer has no [seq × d] key/value projections; it multiplies q by Wk and p·x by Wvᵀ (1 row each) and
 * scores/mixes against x (nh rows of width d) instead.
 */
export function inferenceFlops(c: DistilBertConfig, batch: number, seq: number): number {
  const d = c.dim;
  return forwardFlops(c, batch, seq) - 4 * batch * seq * d * d - 4 * batch * seq * d + 4 * batch * d * d + 4 * batch * c.n_heads * seq * d;
}

function tokens(batch: number, seq: number, vocab: number) {
  const { ids, mask } = syntheticIds(batch, seq, vocab);
  return { batch, seqLen: seq, inputIds: ids, attentionMask: mask };
}

/** Plain ORT MatMul GFLOP/s at the FFN shape of a 32 × 40 batch ([1280, 768] × [768, 3072]). */
async function ortMatmulGflops(threads: number, runs: number): Promise<number> {
  const [m, k, n] = [1280, 768, 3072];
  const g = new Graph("matmul");
  const a = g.input("a", "float32", [m, k]);
  const b = g.input("b", "float32", [k, n]);
  g.output("y", op.matmul(a, b));
  const s = await Session.create(g.toOnnx(), { threads });
  const feeds = { a: f32(new Float32Array(m * k).fill(0.5), [m, k]), b: f32(new Float32Array(k * n).fill(0.25), [k, n]) };
  const t = await medianTime(() => s.run(feeds), 3, Math.max(runs, 10));
  await s.dispose();
  return (2 * m * k * n) / t / 1e9;
}

type PeerResult = Record<string, number | string>;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const c: DistilBertConfig = { ...PRESETS.base!, num_labels: 8 };
  const session = { threads: args.threads };
  const out: Record<string, number | string | null> = { threads: args.threads, optimizer_mode: args.mode };

  log(args, `engine: DistilBERT-base random init (${c.n_layers} × ${c.dim}, ${c.n_heads} heads), ${args.threads} threads`);
  let params: ReturnType<typeof initParams> | undefined = initParams(c, 0);
  out.matmul_gflops = round(await ortMatmulGflops(args.threads, args.runs), 1);

  // Inference as served: the exported model.onnx graph (weights as initializers) in one session. Measured
  // first and released, so the peak RSS is the larger of the two phases, not their sum.
  log(args, "engine: inference (exported model.onnx)…");
  let infer: Session | undefined = await Session.create(buildInferenceOnnx(c, params), session);
  const feeds = (b: ReturnType<typeof tokens>) => ({ input_ids: i64(b.inputIds, [b.batch, b.seqLen]), attention_mask: i64(b.attentionMask, [b.batch, b.seqLen]) });
  const f32x40 = feeds(tokens(32, 40, c.vocab_size));
  const tf = await medianTime(() => infer!.run(f32x40), 2, args.runs);
  out.forward_seq_per_s_40 = round(32 / tf, 1);
  out.forward_gflops_40 = round(inferenceFlops(c, 32, 40) / tf / 1e9, 1);
  const one = feeds(tokens(1, 40, c.vocab_size));
  out.single_prompt_ms = round(1000 * (await medianTime(() => infer!.run(one), 3, Math.max(20, args.runs))), 2);
  await infer.dispose();
  infer = undefined;
  // The optional int8 export (onnx/model_quantized.onnx in a model directory): same graph, int8 encoder matmuls.
  log(args, "engine: inference (int8 export)…");
  let int8: Session | undefined = await Session.create(buildInferenceOnnx(c, params, { quantize: "int8" }), session);
  out.forward_seq_per_s_40_int8 = round(32 / (await medianTime(() => int8!.run(f32x40), 2, args.runs)), 1);
  out.single_prompt_ms_int8 = round(1000 * (await medianTime(() => int8!.run(one), 3, Math.max(20, args.runs))), 2);
  await int8.dispose();
  int8 = undefined;

  const model = await DistilBertModel.create(c, { params, optimizerMode: args.mode, session });
  // eslint-disable-next-line no-useless-assignment -- drop the reference so the copy can be collected: the trainer keeps its own
  params = undefined;
  for (const seq of [40, 64]) {
    const b = tokens(32, seq, c.vocab_size);
    const batch = { ...b, labels: Int32Array.from({ length: 32 }, (_, i) => i % 8) };
    log(args, `engine: training step 32 × ${seq}…`);
    const t = await medianTime(() => model.trainStep(batch, { learningRate: 2e-5, weightDecay: 0.01 }), 2, args.runs);
    out[`train_step_s_32x${seq}`] = round(t, 4);
    out[`train_gflops_32x${seq}`] = round((3 * forwardFlops(c, 32, seq)) / t / 1e9, 1);
  }
  await model.dispose();
  out.peak_rss_mb = round(process.resourceUsage().maxRSS / 1024, 1);

  const peerRun = args.peer ? runPeer(args.threads, (m) => log(args, m)) : { skipped: "--no-peer" };
  const peer: PeerResult | undefined = peerRun.result;
  const rows: [string, string, number | string | null, number | string | undefined, "lower" | "higher" | ""][] = [
    ["training step 32 × 40", "s", out.train_step_s_32x40!, peer?.train_step_s_32x40, "lower"],
    ["training step 32 × 64", "s", out.train_step_s_32x64!, peer?.train_step_s_32x64, "lower"],
    ["forward 32 × 40", "seq/s", out.forward_seq_per_s_40!, peer?.forward_seq_per_s_40, "higher"],
    ["single prompt 1 × 40", "ms", out.single_prompt_ms!, peer?.single_prompt_ms, "lower"],
    ["forward 32 × 40, int8 export", "seq/s", out.forward_seq_per_s_40_int8!, peer?.forward_seq_per_s_40, "higher"],
    ["single prompt 1 × 40, int8 export", "ms", out.single_prompt_ms_int8!, peer?.single_prompt_ms, "lower"],
    ["peak RSS", "MB", out.peak_rss_mb!, peer?.peak_rss_mb, "lower"],
    ["achieved GFLOP/s, train 32 × 40", "GFLOP/s", out.train_gflops_32x40!, undefined, ""],
    ["achieved GFLOP/s, forward 32 × 40", "GFLOP/s", out.forward_gflops_40!, undefined, ""],
    ["plain ORT MatMul 1280×768×3072", "GFLOP/s", out.matmul_gflops!, undefined, ""],
  ];
  if (peer) {
    out.peer = JSON.stringify(peer);
    for (const k of ["train_step_s_32x40", "train_step_s_32x64", "forward_seq_per_s_40", "single_prompt_ms"]) {
      const p = Number(peer[k]);
      out[`ratio_${k}`] = p > 0 ? round(Number(out[k]) / p, 3) : null;
      if (`${k}_int8` in out) out[`ratio_${k}_int8`] = p > 0 ? round(Number(out[`${k}_int8`]) / p, 3) : null;
    }
  }
  if (!args.json) {
    const head = ["metric", "unit", "engine", "peer (torch)", "engine/peer"];
    const body = rows.map(([name, unit, e, p, better]) => {
      const ratio = p !== undefined && Number(p) > 0 ? (Number(e) / Number(p)).toFixed(2) + (better ? ` (${better} is better)` : "") : "";
      return [name, unit, String(e), p === undefined ? (peer ? "" : "n/a") : String(p), ratio];
    });
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
    const line = (r: string[]) => r.map((v, i) => v.padEnd(widths[i]!)).join("  ");
    console.log(line(head));
    console.log(widths.map((w) => "-".repeat(w)).join("  "));
    for (const r of body) console.log(line(r));
    if (!peer) console.log(`(peer not run: ${peerRun.skipped})`);
  }
  if (args.json) console.log(JSON.stringify({ ...out, peer: peer ?? null, ...(peer ? {} : { peer_skipped: peerRun.skipped }) }));
}

runMain(main);
