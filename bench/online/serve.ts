/**
 * Bench: online learning over HTTP (`lenpred serve`, docs/online.md "HTTP API").
 *
 * 1. Ingest: `POST /v1/observe` with novel prompts (every observation needs a base-model inference to be
 *    learned), loaded by autocannon over loopback. The durable server (`--state-dir`: 202 only after fsync)
 *    and, as the control in the same run, the in-memory server (no state dir), in alternating rounds; each
 *    with one observation per request and with batches of 10. Reported: acknowledged observations/s
 *    (median of the rounds) and how fast the learner (base inference in the worker thread) catches up.
 * 2. Retrain: predict p99 (novel prompts, 4 clients) before, during and after a background DistilBERT retrain
 *    (child process), same server, same run, in `--cycles` alternating before → during → after cycles. The default
 *    (worker-thread) server; `--no-worker` measures the in-process one.
 *
 *   npm run bench:online:serve [-- --rounds 3 --duration 5 --connections 64 --batches 1,10 --model alpaca-s3 --no-retrain]
 *    The retrain child is stopped while predictions are in flight (YieldGate): with back-to-back clients it
 *    hardly runs until the load stops; `--think-ms M` (each client pauses uniformly 0–2M ms between calls)
 *    leaves gaps in which it runs and is stopped again at every arrival.
 *
 *   npm run bench:online:serve -- --no-ingest [--retrain-every 2000 --cycles 2 --calls 800 --no-worker --think-ms 10]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { median, round, runMain } from "../lib/common.js";
import { startServeProcess, type ServeProcess } from "../lib/serve-process.js";

const args = process.argv.slice(2);
const arg = (k: string) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : undefined; };
const ROUNDS = Number(arg("--rounds") ?? 3);
const DURATION = Number(arg("--duration") ?? 5);
const CONNECTIONS = Number(arg("--connections") ?? 64);
const MODEL = arg("--model") ?? "alpaca-s3";
/** Mean pause of each predict client between its calls (0 = back to back: the server is never idle). */
const THINK_MS = Number(arg("--think-ms") ?? 0);

type Server = ServeProcess;

async function startServer(extra: string[]): Promise<Server> {
  return startServeProcess(["--model", MODEL, ...extra]);
}

async function stopServer(s: Server): Promise<void> {
  if (s.child.exitCode !== null) return;
  const exited = new Promise<void>((r) => s.child.on("exit", () => r()));
  s.child.kill("SIGTERM");
  await exited;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- stats/metrics JSON, read field by field
const get = async (url: string, path: string) => (await fetch(url + path)).json() as Promise<Record<string, any>>;

let serial = 0;
/** A novel observation: no two share a prompt (the learner's base-prediction cache never hits). */
function observation() {
  const i = serial++;
  return { prompt: `Question ${i}: explain item ${(i * 7919) % 100003} of the catalogue and compare it with item ${i} in ${3 + (i % 5)} sentences.`, output_tokens: 20 + ((i * 37) % 400), model: `llm-${i % 4}` };
}

/** One autocannon round of POST /v1/observe; returns acknowledged observations/s. */
async function ingestRound(url: string, batch: number): Promise<{ obsPerS: number; non2xx: number; errors: number }> {
  const r = await autocannon({
    url, connections: CONNECTIONS, duration: DURATION,
    requests: [{
      method: "POST", path: "/v1/observe", headers: { "content-type": "application/json" },
      setupRequest: (req) => ({ ...req, body: JSON.stringify(batch === 1 ? observation() : { observations: Array.from({ length: batch }, observation) }) }),
    }],
  });
  const ok = r["2xx"];
  return { obsPerS: (ok * batch) / DURATION, non2xx: r.non2xx, errors: r.errors };
}

/** Wait until the learner has caught up; returns observations learned per second while catching up from `t0`. */
async function drain(url: string): Promise<{ backlogAtEnd: number; secondsToDrain: number }> {
  const backlogAtEnd = (await get(url, "/v1/observe/stats")).backlog as number;
  const t0 = performance.now();
  while (((await get(url, "/v1/observe/stats")).backlog as number) > 0) await new Promise((r) => setTimeout(r, 100));
  return { backlogAtEnd, secondsToDrain: (performance.now() - t0) / 1000 };
}

async function ingest(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "lenpred-bench-online-serve-"));
  const durable = await startServer(["--state-dir", join(dir, "state")]);
  const memory = await startServer([]);
  try {
    for (const batch of (arg("--batches") ?? "1,10").split(",").map(Number)) {
      const res: Record<string, number[]> = { durable: [], memory: [] };
      for (let round_ = 0; round_ < ROUNDS; round_++) {
        const order: Array<[string, Server]> = round_ % 2 === 0 ? [["durable", durable], ["memory", memory]] : [["memory", memory], ["durable", durable]];
        for (const [name, s] of order) {
          const r = await ingestRound(s.url, batch);
          const d = await drain(s.url);
          res[name]!.push(r.obsPerS);
          console.log(`  batch ${batch}, ${name}, round ${round_ + 1}: ${round(r.obsPerS, 0)} obs/s acknowledged (non-2xx ${r.non2xx}, errors ${r.errors}); backlog ${d.backlogAtEnd} learned in ${round(d.secondsToDrain, 1)} s after the round`);
        }
      }
      const st = await get(durable.url, "/v1/observe/stats");
      console.log(`batch ${batch}: durable ${round(median(res.durable!), 0)} obs/s vs in-memory ${round(median(res.memory!), 0)} obs/s (median of ${ROUNDS}; durable/memory ${round(median(res.durable!) / median(res.memory!), 2)}); store: ${st.store.appended} appended in ${st.store.fsyncs} fsyncs`);
    }
    const st = await get(durable.url, "/v1/observe/stats");
    console.log("durable server, total:", { accepted: st.accepted, learned: st.targets.reduce((s: number, t: { observations: number }) => s + t.observations, 0) });
  } finally {
    await stopServer(durable);
    await stopServer(memory);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Predict latencies (ms) of `n` novel prompts from 4 clients. */
async function predictLatencies(url: string, tag: string, n: number, keepGoing: () => boolean = () => true): Promise<number[]> {
  const out: number[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < n && keepGoing()) {
      const i = next++;
      const t = performance.now();
      const r = await fetch(url + "/v1/predict", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: `${tag} ${i}: what would you recommend for case ${(i * 31) % 977}?`, model: "llm-0" }) });
      await r.arrayBuffer();
      if (r.status === 200 && keepGoing()) out.push(performance.now() - t);
      if (THINK_MS > 0) await new Promise((res) => setTimeout(res, THINK_MS * 2 * Math.random())); // gaps: a load below capacity
    }
  }));
  return out;
}

const p99 = (ms: number[]) => [...ms].sort((a, b) => a - b)[Math.floor(0.99 * (ms.length - 1))]!;

async function retrain(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "lenpred-bench-online-retrain-"));
  const every = Number(arg("--retrain-every") ?? 2000);
  const cycles = Number(arg("--cycles") ?? 2);
  const perPhase = Number(arg("--calls") ?? 800);
  console.log(`predict load: 4 clients, ${THINK_MS > 0 ? `pausing 0–${2 * THINK_MS} ms between calls` : "back to back"}`);
  const worker = !args.includes("--no-worker");
  const s = await startServer([...(worker ? [] : ["--no-worker"]), "--state-dir", join(dir, "state"), "--retrain-every", String(every)]);
  const phases: Record<"before" | "during" | "after", number[]> = { before: [], during: [], after: [] };
  try {
    const send = async (k: number) => {
      for (let i = 0; i < k; i += 100) {
        const obs = Array.from({ length: Math.min(100, k - i) }, () => ({ ...observation(), model: "llm-0" }));
        const r = await fetch(s.url + "/v1/observe", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ observations: obs }) });
        if (r.status !== 202) throw new Error(`observe: ${r.status} ${await r.text()}`);
      }
      await drain(s.url);
    };
    const retraining = async () => (await get(s.url, "/v1/observe/stats")).retraining as boolean;
    await predictLatencies(s.url, "warm-up", 200); // JIT, first session runs: not part of any phase
    // Cycles of before → during → after, so the three phases alternate in time and share the machine's noise.
    for (let c = 0; c < cycles; c++) {
      await send(every - 1); // every − 1 new observations of llm-0: no retrain yet
      const before = await predictLatencies(s.url, `quiet${c}`, perPhase);
      await send(1); // the every-th: the retrain starts in its child process
      let running = await retraining();
      const poll = setInterval(() => { retraining().then((v) => { running = v; }, () => undefined); }, 100);
      const during: number[] = [];
      while (running && during.length < 50 * perPhase) during.push(...await predictLatencies(s.url, `busy${c}-${during.length}`, 100, () => running));
      clearInterval(poll);
      if (args.includes("--tenths")) { // where in the retrain the slow calls fall: p99 per tenth of its duration, in call order
        const k = Math.ceil(during.length / 10);
        console.log(`  cycle ${c + 1}, p99 per tenth of the retrain (ms):`, Array.from({ length: 10 }, (_, j) => round(p99(during.slice(j * k, (j + 1) * k)), 1)).join(" "));
      }
      while (await retraining()) await new Promise((r) => setTimeout(r, 200));
      const after = await predictLatencies(s.url, `after${c}`, perPhase);
      const st = await get(s.url, "/v1/observe/stats");
      console.log(`  cycle ${c + 1}: predict p99 ${round(p99(before), 2)} ms before (${before.length} calls), ${round(p99(during), 2)} ms during a retrain (${during.length}), ${round(p99(after), 2)} ms after (${after.length}); during/before ${round(p99(during) / p99(before), 2)}; retrain child stopped ${st.retrainYield?.pauses ?? "-"} times, ${round((st.retrainYield?.pausedMs ?? 0) / 1000, 1)} s in all so far; retrain:`, st.lastRetrain);
      for (const [k, v] of [["before", before], ["during", during], ["after", after]] as const) phases[k] = phases[k].concat(v); // no push(...v): 10⁵ arguments overflow the stack
    }
    const { before, during, after } = phases;
    console.log(`${worker ? "worker" : "--no-worker"} server, ${cycles} cycles pooled: predict p99 ${round(p99(before), 2)} ms with no retrain (${before.length} calls), ${round(p99(during), 2)} ms during a retrain (${during.length}), ${round(p99(after), 2)} ms after (${after.length}); during/before ${round(p99(during) / p99(before), 2)}, after/before ${round(p99(after) / p99(before), 2)}; median ${round(median(before), 2)} / ${round(median(during), 2)} / ${round(median(after), 2)} ms`);
  } finally {
    await stopServer(s);
    rmSync(dir, { recursive: true, force: true });
  }
}

runMain(async () => {
  console.log(`online serve bench: model ${MODEL}, ${CONNECTIONS} connections, ${ROUNDS} rounds × ${DURATION} s`);
  if (!args.includes("--no-ingest")) await ingest();
  if (!args.includes("--no-retrain")) await retrain();
});
