/**
 * Engine benchmark: a DistilBERT-base-shaped classifier (the same model as
 * /work/shared/bench/peer_torch_distilbert.py) built with the engine, timed as
 *   - a training step (forward + cross-entropy + backward + AdamW) at 32×40, in the "split" and "fused" layouts,
 *   - forward throughput at 32×40 and a single 40-token prompt (weights as initializers, dropout off),
 * and, unless --no-peer, the PyTorch peer run right after in the same process tree, printed as ratios.
 *
 * Usage: npx tsx bench/engine-step.ts [--layers 6] [--modes split,fused] [--runs 5] [--no-peer] [--threads 2]
 * Timings on a shared 2-core box are noisy: compare the ratios of one run, not numbers across runs.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Graph, type Tensor } from "../src/engine/graph.js";
import * as op from "../src/engine/ops.js";
import { Trainer } from "../src/engine/optim.js";
import { i64, Session } from "../src/engine/session.js";
import type { NamedTensors } from "../src/model/tensors.js";
import { createRng } from "../src/util/rng.js";

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : dflt;
};
const LAYERS = Number(arg("layers", "6"));
const RUNS = Number(arg("runs", "5"));
const THREADS = Number(arg("threads", "2"));
const MODES = arg("modes", "split,fused").split(",") as ("split" | "fused")[];
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
function build(training: boolean, weights: NamedTensors, asInitializers: boolean) {
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
    const lin = (n: string, t: Tensor): Tensor => op.linear(t, w[`l${l}.${n}.weight`]!, w[`l${l}.${n}.bias`]);
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

/** Per-op-type kernel time from an ORT profile trace (top 20), to stderr. */
function printProfile(mode: string): void {
  const dir = "/tmp";
  const files = readdirSync(dir).filter((f) => f.startsWith(`lenpred-engine-${mode}`)).map((f) => join(dir, f));
  const file = files.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (!file) return;
  const events = JSON.parse(readFileSync(file, "utf8")) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
  const byOp = new Map<string, number>();
  let total = 0;
  for (const e of events) {
    if (e.cat !== "Node" || !e.name.endsWith("_kernel_time")) continue;
    const k = e.args?.op_name ?? "?";
    byOp.set(k, (byOp.get(k) ?? 0) + e.dur);
    total += e.dur;
  }
  const top = [...byOp].sort((a, b) => b[1] - a[1]).slice(0, 20);
  console.error(`profile ${mode} (${file}): kernel total ${(total / 1e6).toFixed(2)} s over all profiled runs`);
  for (const [k, v] of top) console.error(`  ${k.padEnd(28)} ${(v / 1e6).toFixed(3)} s  ${((100 * v) / total).toFixed(1)}%`);
}

async function medianTime(fn: () => Promise<unknown>, warmup: number, runs: number): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    ts.push((performance.now() - t) / 1000);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)]!;
}

const out: Record<string, number | string> = { layers: LAYERS, threads: THREADS };
const weights = initParams();
for (const mode of MODES) {
  const { g, logits, params } = build(true, weights, false);
  const labels = g.input("labels", "int64", ["batch"]);
  const loss = op.softmaxCrossEntropy(logits, labels);
  const profile = argv.includes("--profile") ? `/tmp/lenpred-engine-${mode}` : undefined;
  const tr = await Trainer.create({ graph: g, loss, params, initial: weights, mode, adamw: { weightDecay: 0.01 }, session: { threads: THREADS, profilePrefix: profile } });
  const feeds = batch(32, 40);
  const split = { run: 0, update: 0 };
  out[`train_step_s_32x40_${mode}`] = Number((await medianTime(async () => {
    const r = await tr.step(feeds, 2e-5);
    split.run = r.seconds.run;
    split.update = r.seconds.update;
  }, 2, RUNS)).toFixed(4));
  out[`last_step_run_s_${mode}`] = Number(split.run.toFixed(4));
  out[`last_step_update_s_${mode}`] = Number(split.update.toFixed(4));
  if (profile) {
    tr.session.endProfiling();
    printProfile(mode);
  }
  await tr.dispose();
}
{
  const { g, logits } = build(false, weights, true);
  const s = await Session.create(g.toOnnx({ outputs: { logits } }), { threads: THREADS });
  const { input_ids, attention_mask } = batch(32, 40);
  const tf = await medianTime(() => s.run({ input_ids, attention_mask }), 2, RUNS);
  out.forward_seq_per_s_40 = Number((32 / tf).toFixed(1));
  const one = batch(1, 40);
  out.single_prompt_ms = Number((1000 * (await medianTime(() => s.run({ input_ids: one.input_ids, attention_mask: one.attention_mask }), 3, 20))).toFixed(2));
  await s.dispose();
}
if (!argv.includes("--no-peer")) {
  const peer = spawnSync("/usr/bin/python3", ["/work/shared/bench/peer_torch_distilbert.py", "--json", "--threads", String(THREADS)], { encoding: "utf8" });
  const line = peer.stdout.trim().split("\n").pop() ?? "";
  try {
    const p = JSON.parse(line) as Record<string, number>;
    out.peer_train_step_s_32x40 = p.train_step_s_32x40!;
    out.peer_forward_seq_per_s_40 = p.forward_seq_per_s_40!;
    out.peer_single_prompt_ms = p.single_prompt_ms!;
    for (const mode of MODES) out[`step_ratio_${mode}`] = Number(((out[`train_step_s_32x40_${mode}`] as number) / p.train_step_s_32x40!).toFixed(3));
    out.forward_ratio = Number(((out.forward_seq_per_s_40 as number) / p.forward_seq_per_s_40!).toFixed(3));
  } catch {
    out.peer = `failed: ${peer.stderr.slice(-300)}`;
  }
}
console.log(JSON.stringify(out));
