/**
 * Engine benchmark: a DistilBERT-base-shaped classifier (the same model as
 * ../shared/bench/peer_torch_distilbert.py, found through sharedDir()) built with the engine, timed as
 *   - a training step (forward + cross-entropy + backward + AdamW) at 32×40 for each variant,
 *   - forward throughput at 32×40 and a single 40-token prompt (weights as initializers, dropout off), for
 *     both linear layouts,
 * variants interleaved run by run so that they share the machine's load;
 * and, unless --no-peer, the PyTorch peer run right after in the same process tree, printed as ratios
 * (python: $LENPRED_PEER_PYTHON, default python3; skipped with one line when it runs on the reference BLAS).
 *
 * Usage: npx tsx bench/engine-step.ts [--layers 6] [--variants split:gemm,split:matmul,fused:gemm] [--runs 5]
 *        [--no-peer] [--threads 2] [--profile] [--seq 40]
 * Variants are "<layout>:<linear>[:scatternd]": layout split|fused (Trainer mode), linear gemm|matmul (op.linear
 * `via`); ":scatternd" = the embedding gradient as ScatterND add (before 2026-11-30; races with 2 threads).
 * Timings on a shared 2-core box are noisy: compare the ratios of one run, not numbers across runs.
 */
import { printOrtProfile } from "./ort-profile.js";
import { runPeer } from "./peer.js";
import { Graph, type Tensor } from "../src/engine/graph.js";
import * as op from "../src/engine/ops.js";
import { Trainer } from "../src/engine/optim.js";
import { i64, Session } from "../src/engine/session.js";
import type { NamedTensors } from "../src/engine/tensors.js";
import { createRng } from "../src/util/rng.js";
import { median } from "./common.js";

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : dflt;
};
const LAYERS = Number(arg("layers", "6"));
const RUNS = Number(arg("runs", "5"));
const THREADS = Number(arg("threads", "2"));
/** Training-step sequence length (default 40, the peer's); the keys keep the name "32x40". */
const SEQ = Number(arg("seq", "40"));
const VARIANTS = arg("variants", "split:gemm,split:matmul").split(",").filter((v) => /^(split|fused):(gemm|matmul)(:scatternd)?$/.test(v));
const [V, D, H, F, P, C] = [30522, 768, 12, 3072, 512, 8];

function paramShapes(): Record<string, number[]> {
  const s: Record<string, number[]> = { "tok.weight": [V, D], "pos.weight": [P, D], "ln.weight": [D], "ln.bias": [D] };
  for (let l = 0; l < LAYERS; l++) {
    for (const n of ["q", "k", "v", "o"]) Object.assign(s, { [`l${l}.${n}.weight`]: [D, D], [`l${l}.${n}.bias`]: [D] });
    Object.assign(s, { [`l${l}.ln1.weight`]: [D], [`l${l}.ln1.bias`]: [D], [`l${l}.ln2.weight`]: [D], [`l${l}.ln2.bias`]: [D] });
    Object.assign(s, { [`l${l}.f1.weight`]: [F, D], [`l${l}.f1.bias`]: [F], [`l${l}.f2.weight`]: [D, F], [`l${l}.f2.bias`]: [D] });
  }
  Object.assign(s, { "pre.weight": [D, D], "pre.bias": [D], "cls.weight": [C, D], "cls.bias": [C] });
  return s;
}

function initParams(): NamedTensors {
  const rng = createRng(0);
  return new Map(Object.entries(paramShapes()).map(([k, s]) => {
    const n = s.reduce((a, b) => a * b, 1);
    const data = k.includes("ln") && k.endsWith("weight") ? new Float32Array(n).fill(1) : k.endsWith("bias") ? new Float32Array(n) : Float32Array.from({ length: n }, () => (rng.next() - 0.5) * 0.04);
    return [k, { shape: s, data }];
  }));
}

/** The peer's model, op for op. `asInitializers` embeds the weights (inference) instead of feeding them. */
function build(training: boolean, weights: NamedTensors, asInitializers: boolean, via: "gemm" | "matmul" = "gemm") {
  const g = new Graph("distilbert-like");
  const ids = g.input("input_ids", "int64", ["batch", "seq"]);
  const mask = g.input("attention_mask", "int64", ["batch", "seq"]);
  const params: Tensor[] = [];
  const w: Record<string, Tensor> = {};
  for (const [k, t] of weights) {
    w[k] = asInitializers ? g.initializer(k, { dtype: "float32", shape: t.shape, data: t.data }) : g.input(k, "float32", t.shape);
    params.push(w[k]!);
  }
  const drop = (x: Tensor): Tensor => op.dropout(x, 0.1, training);
  const seqLen = op.slice(op.shapeOf(ids), [1], [2]);
  const positions = g.node("Range", [op.scalar(g, 0, "int64"), op.squeeze(seqLen, [0]), op.scalar(g, 1, "int64")], [{ dtype: "int64", shape: ["seq"] }])[0]!;
  let x = drop(op.layerNorm(op.add(op.gather(w["tok.weight"]!, ids), op.gather(w["pos.weight"]!, positions)), w["ln.weight"]!, w["ln.bias"], { epsilon: 1e-12 }));
  const bias = op.unsqueeze(op.mul(op.sub(1, op.cast(mask, "float32")), -1e9), [1, 2]);
  const dh = D / H;
  for (let l = 0; l < LAYERS; l++) {
    const lin = (n: string, t: Tensor): Tensor => op.linear(t, w[`l${l}.${n}.weight`]!, w[`l${l}.${n}.bias`], { via });
    const split = (t: Tensor): Tensor => op.transpose(op.reshape(t, [0, 0, H, dh]), [0, 2, 1, 3]);
    const q = split(lin("q", x));
    const k = split(lin("k", x));
    const v = split(lin("v", x));
    const att = drop(op.softmax(op.add(op.div(op.matmul(q, op.transposeLast2(k)), Math.sqrt(dh)), bias)));
    const ctx = op.reshape(op.transpose(op.matmul(att, v), [0, 2, 1, 3]), [0, 0, D]);
    x = op.layerNorm(op.add(x, drop(lin("o", ctx))), w[`l${l}.ln1.weight`]!, w[`l${l}.ln1.bias`], { epsilon: 1e-12 });
    x = op.layerNorm(op.add(x, drop(lin("f2", op.gelu(lin("f1", x))))), w[`l${l}.ln2.weight`]!, w[`l${l}.ln2.bias`], { epsilon: 1e-12 });
  }
  const cls = op.squeeze(op.slice(x, [0], [1], [1]), [1]);
  const logits = op.linear(drop(op.relu(op.linear(cls, w["pre.weight"]!, w["pre.bias"]))), w["cls.weight"]!, w["cls.bias"]);
  return { g, logits, params };
}

function batch(b: number, s: number) {
  const rng = createRng(1);
  return {
    input_ids: i64(BigInt64Array.from({ length: b * s }, () => BigInt(rng.int(V))), [b, s]),
    attention_mask: i64(new BigInt64Array(b * s).fill(1n), [b, s]),
    labels: i64(BigInt64Array.from({ length: b }, () => BigInt(rng.int(C))), [b]),
  };
}




const out: Record<string, number | string> = { layers: LAYERS, threads: THREADS };
const weights = initParams();
{
  // Training step variants (layout:linear), interleaved step by step so they see the same machine load.
  const trainers: Record<string, Trainer> = {};
  for (const v of VARIANTS) {
    const [mode, via, embGrad] = v.split(":") as ["split" | "fused", "gemm" | "matmul", "scatternd" | undefined];
    const { g, logits, params } = build(true, weights, false, via);
    const labels = g.input("labels", "int64", ["batch"]);
    const loss = op.softmaxCrossEntropy(logits, labels);
    const profile = argv.includes("--profile") ? `/tmp/lenpred-engine-${v.replaceAll(":", "-")}` : undefined;
    trainers[v] = await Trainer.create({ graph: g, loss, params, initial: weights, mode, adamw: { weightDecay: 0.01 }, session: { threads: THREADS, profilePrefix: profile }, grad: embGrad ? { embeddingGrad: "scatterND" } : {} });
  }
  const feeds = batch(32, SEQ);
  // cpu = user + system seconds of this process (all ORT threads): less sensitive to other processes' load.
  const times: Record<string, { step: number[]; run: number[]; update: number[]; cpu: number[] }> = {};
  for (let r = 0; r < RUNS + 2; r++) {
    // ABBA order: alternate the order every round so no variant always runs right after another.
    const order = r % 2 ? Object.entries(trainers).reverse() : Object.entries(trainers);
    for (const [v, tr] of order) {
      const t = performance.now();
      const c = process.cpuUsage();
      const res = await tr.step(feeds, 2e-5);
      const cpu = process.cpuUsage(c);
      if (r < 2) continue; // warmup
      const rec = (times[v] ??= { step: [], run: [], update: [], cpu: [] });
      rec.step.push((performance.now() - t) / 1000);
      rec.cpu.push((cpu.user + cpu.system) / 1e6);
      rec.run.push(res.seconds.run);
      rec.update.push(res.seconds.update);
    }
  }
  if (SEQ !== 40) out.train_seq = SEQ;
  for (const [v, rec] of Object.entries(times)) {
    out[`train_step_s_32x40_${v}`] = Number(median(rec.step).toFixed(4));
    out[`train_update_s_${v}`] = Number(median(rec.update).toFixed(4));
    out[`train_cpu_s_${v}`] = Number(median(rec.cpu).toFixed(4));
  }
  for (const [v, tr] of Object.entries(trainers)) {
    if (argv.includes("--profile")) {
      tr.session.endProfiling();
      printOrtProfile(`lenpred-engine-${v.replaceAll(":", "-")}_`, v, 20);
    }
    await tr.dispose();
  }
}
{
  // Forward (inference): both linear layouts, runs interleaved so they see the same machine load.
  const sessions: Record<string, Session> = {};
  for (const via of ["gemm", "matmul"] as const) {
    const { g, logits } = build(false, weights, true, via);
    sessions[via] = await Session.create(g.toOnnx({ outputs: { logits } }), { threads: THREADS });
  }
  const { input_ids, attention_mask } = batch(32, 40);
  const one = batch(1, 40);
  const fwd: Record<string, number[]> = {};
  const single: Record<string, number[]> = {};
  for (const s of Object.values(sessions)) for (let i = 0; i < 2; i++) await s.run({ input_ids, attention_mask });
  for (let r = 0; r < RUNS; r++) {
    const order = r % 2 ? Object.entries(sessions).reverse() : Object.entries(sessions);
    for (const [via, s] of order) {
      let t = performance.now();
      await s.run({ input_ids, attention_mask });
      (fwd[via] ??= []).push((performance.now() - t) / 1000);
      for (let k = 0; k < 4; k++) {
        t = performance.now();
        await s.run({ input_ids: one.input_ids, attention_mask: one.attention_mask });
        (single[via] ??= []).push(performance.now() - t);
      }
    }
  }
  for (const via of Object.keys(sessions)) {
    out[`forward_seq_per_s_40_${via}`] = Number((32 / median(fwd[via]!)).toFixed(1));
    out[`single_prompt_ms_${via}`] = Number(median(single[via]!).toFixed(2));
  }
  out.forward_seq_per_s_40 = Math.max(out.forward_seq_per_s_40_gemm as number, out.forward_seq_per_s_40_matmul as number);
  out.single_prompt_ms = Math.min(out.single_prompt_ms_gemm as number, out.single_prompt_ms_matmul as number);
  for (const s of Object.values(sessions)) await s.dispose();
}
if (!argv.includes("--no-peer")) {
  const { result: p, skipped } = runPeer(THREADS, (m) => console.error(m));
  if (p) {
    out.peer_train_step_s_32x40 = Number(p.train_step_s_32x40);
    out.peer_forward_seq_per_s_40 = Number(p.forward_seq_per_s_40);
    out.peer_single_prompt_ms = Number(p.single_prompt_ms);
    for (const v of VARIANTS) out[`step_ratio_${v}`] = Number(((out[`train_step_s_32x40_${v}`] as number) / Number(p.train_step_s_32x40)).toFixed(3));
    out.forward_ratio = Number(((out.forward_seq_per_s_40 as number) / Number(p.forward_seq_per_s_40)).toFixed(3));
  } else {
    out.peer = `skipped: ${skipped}`;
  }
}
console.log(JSON.stringify(out));
