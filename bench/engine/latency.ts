/**
 * `npm run bench:engine:latency [-- --json] [--rounds 5] [--variants a,b,...]`
 *
 * Single-prompt latency (1 × 40) and batched throughput (32 × 40) of DistilBERT-base's `model.onnx`
 * (random init, float32) under plain onnxruntime-node, for several export forms and session options, all
 * sessions open at once and measured interleaved (round-robin, several rounds) so machine load hits every
 * variant alike; the order rotates every round. Reports the median and best wall time and the median CPU time
 * (all threads) per single prompt, batched seq/s, and ratios to the first variant listed (by default
 * "engine": the export before 2026-11-25, 2 threads, spinning off, optimisation "all"), plus the matmul floor.
 */
import { Graph } from "../../src/engine/graph.js";
import * as op from "../../src/engine/ops.js";
import { f32, i64, Session, type SessionOptions } from "../../src/engine/session.js";
import { PRESETS, type DistilBertConfig } from "../../src/model/config.js";
import { buildInferenceOnnx, type ExportOptions } from "../../src/model/export-onnx.js";
import { initParams } from "../../src/model/params.js";
import { median, round, runMain, syntheticIds } from "../lib/common.js";

interface Variant { name: string; exportOpts: ExportOptions; session: SessionOptions }

const VARIANTS: Variant[] = [
  { name: "engine", exportOpts: { form: "engine" }, session: { threads: 2 } },
  { name: "inference", exportOpts: {}, session: { threads: 2 } },
  { name: "contrib", exportOpts: { form: "contrib" }, session: { threads: 2 } },
  { name: "inference-matmul", exportOpts: { inference: { gemm2d: false } }, session: { threads: 2 } },
  { name: "inference-noreassoc", exportOpts: { inference: { reassociateLast: false } }, session: { threads: 2 } },
  { name: "contrib-skipln", exportOpts: { form: "contrib", inference: { skipLayerNorm: true } }, session: { threads: 2 } },
  { name: "inference-1thread", exportOpts: {}, session: { threads: 1 } },
  { name: "inference-spin", exportOpts: {}, session: { threads: 2, spinning: true } },
  { name: "inference-extended", exportOpts: {}, session: { threads: 2, optimization: "extended" } },
  // int8 weight encodings (export-onnx.ts `int8Weights`): u8 = the default, exact on every x64 CPU.
  { name: "int8-u8", exportOpts: { quantize: "int8", int8Weights: "u8" }, session: { threads: 2 } },
  { name: "int8-s7", exportOpts: { quantize: "int8", int8Weights: "s7" }, session: { threads: 2 } },
  { name: "int8-s8", exportOpts: { quantize: "int8", int8Weights: "s8" }, session: { threads: 2 } },
];

function parseArgs(argv: string[]) {
  const a = { json: false, rounds: 5, variants: VARIANTS.slice(0, 3).map((v) => v.name) };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (k === "--json") a.json = true;
    else if (k === "--rounds") a.rounds = Math.max(1, Number(argv[++i]));
    else if (k === "--variants") a.variants = argv[++i]!.split(",");
    else if (k === "--help" || k === "-h") {
      console.log([
        "usage: npm run bench:engine:latency -- [--json] [--rounds N] [--variants a,b,...]",
        "DistilBERT-base model.onnx (float32, random init): single prompt 1×40 (ms) and forward 32×40 (seq/s) for",
        "export forms × session options, measured interleaved; ratios are to the first variant listed.",
        `  --variants  comma-separated, from: ${VARIANTS.map((v) => v.name).join(", ")}`,
        "              (default: engine,inference,contrib; engine = the export before 2026-11-25)",
        "  --rounds N  interleaved rounds (default 5); each round times 9 single prompts and 1 batch per variant",
        "  --json      last line of output is one JSON object",
      ].join("\n"));
      process.exit(0);
    } else throw new Error(`unknown option ${k}`);
  }
  for (const n of a.variants) if (!VARIANTS.some((v) => v.name === n)) throw new Error(`unknown variant ${n}`);
  return a;
}

function tokens(batch: number, seq: number, vocab: number) {
  const { ids, mask } = syntheticIds(batch, seq, vocab);
  return { input_ids: i64(ids, [batch, seq]), attention_mask: i64(mask, [batch, seq]) };
}

/**
 * The matmul floor of one 1 × 40 forward: only the weight products of the default export (5 layers at 40 rows:
 * QKV 768→2304, out 768→768, FFN 768→3072→768; the last layer's five 1-row products), as plain ORT MatMuls
 * with initializer weights in one session with the same options. Its time is what the forward would take if
 * everything else were free; FLOPs / time is the GFLOP/s this machine gives these shapes right now.
 */
async function matmulFloor(c: DistilBertConfig, session: SessionOptions) {
  const g = new Graph("matmul_floor");
  const d = c.dim;
  const x40 = g.input("x40", "float32", [40, d]);
  const h40 = g.input("h40", "float32", [40, c.hidden_dim]);
  const x1 = g.input("x1", "float32", [1, d]);
  const h1 = g.input("h1", "float32", [1, c.hidden_dim]);
  let flops = 0;
  let n = 0;
  const mm = (x: { shape: readonly (number | string)[] } & Parameters<typeof op.matmul>[0], k: number, m: number) => {
    const w = g.initializer(`w${n}`, { dtype: "float32", shape: [k, m], data: new Float32Array(k * m).map((_, i) => ((i * 7919) % 200) / 1e4 - 0.01) });
    g.output(`y${n++}`, op.matmul(x, w));
    flops += 2 * (x.shape[0] as number) * k * m;
  };
  for (let l = 0; l < c.n_layers - 1; l++) {
    mm(x40, d, 3 * d); mm(x40, d, d); mm(x40, d, c.hidden_dim); mm(h40, c.hidden_dim, d);
  }
  for (let i = 0; i < 4; i++) mm(x1, d, d); // q, q·Wk, (p·x)·Wvᵀ, out
  mm(x1, d, c.hidden_dim); mm(h1, c.hidden_dim, d);
  const s = await Session.create(g.toOnnx(), session);
  const feeds = {
    x40: f32(new Float32Array(40 * d).fill(0.1), [40, d]), h40: f32(new Float32Array(40 * c.hidden_dim).fill(0.1), [40, c.hidden_dim]),
    x1: f32(new Float32Array(d).fill(0.1), [1, d]), h1: f32(new Float32Array(c.hidden_dim).fill(0.1), [1, c.hidden_dim]),
  };
  return { session: s, feeds, flops };
}


async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (m: string) => { if (!args.json) console.error(m); };
  const c: DistilBertConfig = { ...PRESETS.base!, num_labels: 8 };
  const params = initParams(c, 0);
  const chosen = args.variants.map((n) => VARIANTS.find((v) => v.name === n)!);
  const sessions: Session[] = [];
  for (const v of chosen) {
    log(`creating ${v.name}…`);
    sessions.push(await Session.create(buildInferenceOnnx(c, params, v.exportOpts), v.session));
  }
  const floor = await matmulFloor(c, chosen[0]!.session);
  const one = tokens(1, 40, c.vocab_size);
  const batch = tokens(32, 40, c.vocab_size);
  for (const s of sessions) for (let i = 0; i < 3; i++) await s.run(one);
  for (const s of sessions) await s.run(batch);
  const single: number[][] = chosen.map(() => []);
  const batched: number[][] = chosen.map(() => []);
  const floorMs: number[] = [];
  const cpu: number[][] = chosen.map(() => []); // CPU time of all threads per single prompt: the work, less sensitive to load
  for (let r = 0; r < args.rounds; r++) {
    log(`round ${r + 1}/${args.rounds}`);
    for (let j = 0; j < chosen.length; j++) {
      const i = (j + r) % chosen.length; // rotate the order so no variant always follows the same one
      for (let k = 0; k < 9; k++) {
        const t = performance.now();
        const u = process.cpuUsage();
        await sessions[i]!.run(one);
        single[i]!.push(performance.now() - t);
        const du = process.cpuUsage(u);
        cpu[i]!.push((du.user + du.system) / 1000);
      }
      const t = performance.now();
      await sessions[i]!.run(batch);
      batched[i]!.push(32000 / (performance.now() - t));
    }
    for (let k = 0; k < 9; k++) {
      const t = performance.now();
      await floor.session.run(floor.feeds);
      floorMs.push(performance.now() - t);
    }
  }
  for (const s of sessions) await s.dispose();
  await floor.session.dispose();
  const floorOut = { ms: round(median(floorMs), 2), best_ms: round(Math.min(...floorMs), 2), gflop: round(floor.flops / 1e9, 3), gflops: round(floor.flops / median(floorMs) / 1e6, 1) };
  const rows = chosen.map((v, i) => ({
    variant: v.name, single_prompt_ms: median(single[i]!), single_prompt_best_ms: Math.min(...single[i]!),
    single_prompt_cpu_ms: median(cpu[i]!), forward_seq_per_s_40: median(batched[i]!),
  }));
  const base = rows[0]!;
  const out = rows.map((r) => ({
    ...r,
    single_prompt_ms: round(r.single_prompt_ms, 2),
    single_prompt_best_ms: round(r.single_prompt_best_ms, 2),
    single_prompt_cpu_ms: round(r.single_prompt_cpu_ms, 2),
    ratio_single_prompt_best_ms: round(r.single_prompt_best_ms / base.single_prompt_best_ms, 3),
    ratio_single_prompt_cpu_ms: round(r.single_prompt_cpu_ms / base.single_prompt_cpu_ms, 3),
    forward_seq_per_s_40: round(r.forward_seq_per_s_40, 1),
    ratio_single_prompt_ms: round(r.single_prompt_ms / base.single_prompt_ms, 3),
    ratio_forward_seq_per_s_40: round(r.forward_seq_per_s_40 / base.forward_seq_per_s_40, 3),
  }));
  if (args.json) {
    console.log(JSON.stringify({ rounds: args.rounds, variants: out, matmul_floor: floorOut }));
    return;
  }
  const cols: [string, (r: (typeof out)[number]) => number][] = [
    ["1×40 ms", (r) => r.single_prompt_ms], ["ratio", (r) => r.ratio_single_prompt_ms],
    ["best ms", (r) => r.single_prompt_best_ms], ["ratio", (r) => r.ratio_single_prompt_best_ms],
    ["cpu ms", (r) => r.single_prompt_cpu_ms], ["ratio", (r) => r.ratio_single_prompt_cpu_ms],
    ["32×40 seq/s", (r) => r.forward_seq_per_s_40], ["ratio", (r) => r.ratio_forward_seq_per_s_40],
  ];
  console.log(["variant".padEnd(18), ...cols.map(([h]) => h.padStart(11))].join(" "));
  for (const r of out) console.log([r.variant.padEnd(18), ...cols.map(([, f]) => String(f(r)).padStart(11))].join(" "));
  console.log(`matmul floor (weight products only, ${floorOut.gflop} GFLOP, options of '${chosen[0]!.name}'): ${floorOut.ms} ms median, ` +
    `${floorOut.best_ms} ms best, ${floorOut.gflops} GFLOP/s`);
}

runMain(main);
