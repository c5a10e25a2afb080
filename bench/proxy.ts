/**
 * `npm run bench:proxy`: does putting `lenpred proxy` in front of an LLM server pay off?
 *
 * A burst of requests from a trace with known answer lengths — one LLM of ../shared/data/multi-model/flask.jsonl
 * (or mt-bench.jsonl), lengths counted with the LLaMA tokenizer — goes through the proxy to the stand-in upstream
 * (test/helpers/fake-llm.ts) that answers each with its true length at `--ms-per-token`, at most `--concurrency`
 * at a time. The same burst runs, in the same process and run, under:
 *   fcfs          arrival order (the control)
 *   sjf           shortest *predicted* first
 *   s3            sjf order + KV budget (prompt + reserveTokens of in-flight requests ≤ --kv-budget)
 *   oracle-sjf    shortest *true* length first (the best any predictor could do)
 * The predictor is an n-gram model trained here on the other half of the trace's questions (disjoint prompts)
 * with the same LLM's lengths: what online learning would have learned by observing that LLM.
 * The whole burst is in the proxy before the clock starts (the upstream holds the first requests until then).
 * Reported: mean and p99 end-to-end latency, mean queueing time (release → upstream start), and the share of
 * the oracle's mean-latency gain over fcfs that the predictions capture. Targets: sjf mean ≤ 0.8 × fcfs,
 * sjf p99 ≤ 1.1 × fcfs, ≥ 60 % of the oracle's gain. Exits 0 either way (it reports), 1 on a failed request.
 *
 *   npm run bench:proxy -- [--trace flask|mt-bench] [--llm vicuna_13b] [--requests 200] [--concurrency 4]
 *                          [--ms-per-token 1] [--kv-budget N] [--stream] [--rounds 1] [--aging-seconds 10] [--json FILE]
 *
 * With --rounds R the four policies run R times, interleaved (fcfs, sjf, s3, oracle, fcfs, ...), and each figure
 * is the median over rounds: the machine is shared, and a busy neighbour slows one run, not one policy.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { trainBaseline } from "../src/baselines/index.js";
import { DEFAULT_FEATURES } from "../src/baselines/ngram/features.js";
import { DEFAULT_TRAIN } from "../src/baselines/ngram/model.js";
import { bucketOf, uniformBuckets } from "../src/data/buckets.js";
import type { PreparedRecord, PreparedScheme } from "../src/data/records.js";
import { LengthPredictor } from "../src/predictor/length-predictor.js";
import { fromLengthPredictor, type ProxyPredictor } from "../src/proxy/predictor.js";
import type { PolicyName } from "../src/proxy/scheduler.js";
import { buildProxy } from "../src/proxy/server.js";
import { loadTokenizer } from "../src/tokenizers/index.js";
import { writeJsonAtomic } from "../src/util/atomic.js";
import { parseNumberOption } from "../src/util/number-option.js";
import { createRng } from "../src/util/rng.js";
import { sharedDataFile } from "../src/util/paths.js";
import { startFakeLlm } from "../test/helpers/fake-llm.js";

const { values: args } = parseArgs({
  options: {
    trace: { type: "string", default: "flask" },
    llm: { type: "string" },
    requests: { type: "string", default: "200" },
    concurrency: { type: "string", default: "4" },
    "ms-per-token": { type: "string", default: "1" },
    "kv-budget": { type: "string" },
    stream: { type: "boolean", default: false },
    seed: { type: "string", default: "1" },
    rounds: { type: "string", default: "1" },
    "aging-seconds": { type: "string", default: "10" },
    json: { type: "string" },
  },
});

interface TraceRecord { question_id: number | string; model: string; prompt?: string; output: string; messages?: unknown }

const file = sharedDataFile(`multi-model/${args.trace}.jsonl`);
if (!file) {
  console.log(`bench:proxy skipped: ../shared/data/multi-model/${args.trace}.jsonl is absent`);
  process.exit(0);
}
const llm = args.llm ?? (args.trace === "flask" ? "vicuna_13b" : "vicuna-13b-v1.3");
const N = parseNumberOption("--requests", args.requests!, { int: true, min: 1 });
const C = parseNumberOption("--concurrency", args.concurrency!, { int: true, min: 1 });
const msPerToken = parseNumberOption("--ms-per-token", args["ms-per-token"]!, { min: 0 });
const rounds = parseNumberOption("--rounds", args.rounds!, { int: true, min: 1 });
const agingHalfLifeSeconds = parseNumberOption("--aging-seconds", args["aging-seconds"]!, { min: 0.001 });

const records = readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as TraceRecord)
  // Single-turn records only: a second turn's answer depends on the conversation, which the burst does not send.
  .filter((r) => r.model === llm && r.messages === undefined && typeof r.prompt === "string" && r.prompt.trim() !== "");
if (records.length < 50) {
  console.log(`bench:proxy: only ${records.length} single-turn records for LLM '${llm}' in ${args.trace}; pick another --llm`);
  process.exit(1);
}
const llama = await loadTokenizer("llama");
const items = records.map((r, i) => ({
  id: i, qid: String(r.question_id), prompt: r.prompt!,
  prompt_tokens: llama.count(r.prompt!, { addSpecialTokens: false }),
  output_tokens: Math.max(1, llama.count(r.output, { addSpecialTokens: false })),
}));

// Split by question: train on one half, burst from the other (disjoint prompts).
const rng = createRng(`bench-proxy-${args.seed}`);
const qids = [...new Set(items.map((r) => r.qid))];
for (let i = qids.length - 1; i > 0; i--) {
  const j = Math.floor(rng.next() * (i + 1));
  [qids[i], qids[j]] = [qids[j]!, qids[i]!];
}
const trainQ = new Set(qids.slice(0, Math.floor(qids.length / 2)));
const scheme: PreparedScheme = { buckets: uniformBuckets(2048, 16), tokenizer: "llama", specialTokens: false, label: `${args.trace}:${llm}`, template: "raw" };
const train: PreparedRecord[] = items.filter((r) => trainQ.has(r.qid)).map((r) => ({
  id: r.id, prompt: r.prompt, prompt_tokens: r.prompt_tokens, output_tokens: r.output_tokens, output_length_bucket: bucketOf(scheme.buckets, r.output_tokens),
}));
// The burst is a random sample of the other half, in random order (the file is grouped by task).
const pool = items.filter((r) => !trainQ.has(r.qid));
for (let i = pool.length - 1; i > 0; i--) {
  const j = Math.floor(rng.next() * (i + 1));
  [pool[i], pool[j]] = [pool[j]!, pool[i]!];
}
const burst = pool.slice(0, Math.min(N, pool.length));
const ngram = await trainBaseline("ngram", train, scheme, { ...DEFAULT_TRAIN, features: DEFAULT_FEATURES });
const trueLen = new Map(burst.map((r) => [r.prompt, r.output_tokens]));
const totalTokens = burst.reduce((s, r) => s + r.output_tokens, 0);
const meanReserve = (await ngram.predictBatch(burst.map((r) => r.prompt))).reduce((s, p) => s + p.upperBound, 0) / burst.length;
const meanPrompt = burst.reduce((s, r) => s + r.prompt_tokens, 0) / burst.length;
// Default KV budget: what `concurrency` average requests reserve, so that s3 binds on the big ones.
const kvBudget = args["kv-budget"] ? parseNumberOption("--kv-budget", args["kv-budget"], { int: true, min: 1 }) : Math.round(C * (meanPrompt + meanReserve));

console.log(`bench:proxy: ${args.trace} / ${llm}: ${burst.length} requests in one burst (${totalTokens} output tokens, mean ${(totalTokens / burst.length).toFixed(0)}), ` +
  `n-gram trained on ${train.length} records of the other questions; upstream ${C} at a time, ${msPerToken} ms/token; s3 KV budget ${kvBudget} tokens; ${args.stream ? "streaming" : "non-streaming"}`);

const oracle: ProxyPredictor = {
  name: "oracle",
  async predict({ prompt }) {
    const n = trueLen.get(prompt)!;
    return { expectedTokens: n, reserveTokens: n };
  },
};

/** How long each burst took to reach the proxy (sjf/s3 aging counts from each request's own arrival). */
const arrivalSpread: number[] = [];

interface Row { name: string; meanMs: number; p99Ms: number; meanQueueMs: number; extensions: number }

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
};

/** `predictor` is a factory: the proxy owns (and closes) its predictor. */
async function run(name: string, policy: PolicyName, makePredictor: () => ProxyPredictor): Promise<Row> {
  const predictor = makePredictor();
  const up = await startFakeLlm({ msPerToken, concurrency: C, tokensFor: (p) => trueLen.get(p) ?? 1 });
  const app = await buildProxy({
    upstream: up.url, predictor, policy, maxConcurrency: C, kvBudgetTokens: kvBudget, maxQueue: 4096, agingHalfLifeSeconds,
    countTokens: (t) => llama.count(t, { addSpecialTokens: false }),
  });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  // The burst arrives whole before the clock starts: the upstream holds its first requests until every request
  // is in the proxy (queued or admitted), so no policy is judged on how fast this one process can send 200
  // requests. Latency = release → response received; queueing = release → upstream start.
  // One kept-alive connection per request, opened before the clock starts: the burst then reaches the proxy in
  // a few hundred ms even on a loaded machine (fetch opening 200 sockets took seconds, which sjf's aging then
  // turned into an arrival order).
  const pool = new Pool(url, { connections: burst.length, pipelining: 1 });
  await Promise.all(burst.map(async () => (await pool.request({ method: "GET", path: "/healthz" })).body.dump()));
  up.hold();
  const t0 = performance.now();
  let released = 0;
  const done = Promise.all(burst.map(async (r) => {
    const res = await pool.request({
      method: "POST", path: "/v1/chat/completions",
      headers: { "content-type": "application/json", authorization: "Bearer bench" },
      body: JSON.stringify({ model: llm, messages: [{ role: "user", content: r.prompt }], stream: args.stream }),
    });
    await res.body.dump({ limit: Infinity });
    if (res.statusCode !== 200) throw new Error(`${name}: HTTP ${res.statusCode}`);
    return performance.now() - released;
  }));
  const s = app.lenpredProxy.scheduler;
  while (s.queued + s.inFlight < burst.length || up.waiting < Math.min(C, burst.length)) await new Promise((r) => setTimeout(r, 5));
  released = performance.now();
  arrivalSpread.push(released - t0);
  up.release();
  const latencies = await done;
  const queue = up.arrivals.map((a) => a.startedAt! - released);
  const extensions = app.lenpredProxy.scheduler.extensions;
  await pool.close();
  await app.close();
  await up.close();
  const row = { name, meanMs: latencies.reduce((a, b) => a + b, 0) / latencies.length, p99Ms: pct(latencies, 0.99), meanQueueMs: queue.reduce((a, b) => a + b, 0) / queue.length, extensions };
  console.log(`  ${name.padEnd(10)} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return row;
}

const predicted = () => fromLengthPredictor(LengthPredictor.from(ngram));
const runs: Row[][] = [[], [], [], []];
for (let round = 0; round < rounds; round++) {
  runs[0]!.push(await run("fcfs", "fcfs", predicted));
  runs[1]!.push(await run("sjf", "sjf", predicted));
  runs[2]!.push(await run("s3", "s3", predicted));
  runs[3]!.push(await run("oracle-sjf", "sjf", () => oracle));
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const rows: Row[] = runs.map((rs) => ({
  name: rs[0]!.name, meanMs: median(rs.map((r) => r.meanMs)), p99Ms: median(rs.map((r) => r.p99Ms)),
  meanQueueMs: median(rs.map((r) => r.meanQueueMs)), extensions: median(rs.map((r) => r.extensions)),
}));

const [fcfs, sjf, , orc] = rows as [Row, Row, Row, Row];
console.log(`\nthe bursts took ${(Math.min(...arrivalSpread) / 1000).toFixed(1)}–${(Math.max(...arrivalSpread) / 1000).toFixed(1)} s to reach the proxy; sjf/s3 aging half-life ${agingHalfLifeSeconds} s`);
if (rounds > 1) console.log(`\nmedians over ${rounds} interleaved rounds`);
const capture = (fcfs.meanMs - sjf.meanMs) / (fcfs.meanMs - orc.meanMs);
console.log("\n| policy | mean latency (s) | p99 latency (s) | mean queueing (s) | mean / fcfs | p99 / fcfs | reservation extensions |");
console.log("|---|---:|---:|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(`| ${r.name} | ${(r.meanMs / 1000).toFixed(2)} | ${(r.p99Ms / 1000).toFixed(2)} | ${(r.meanQueueMs / 1000).toFixed(2)} | ${(r.meanMs / fcfs.meanMs).toFixed(3)} | ${(r.p99Ms / fcfs.p99Ms).toFixed(3)} | ${r.name === "s3" ? r.extensions : "—"} |`);
}
const ok = (b: boolean) => (b ? "met" : "MISSED");
console.log(`\nsjf mean / fcfs = ${(sjf.meanMs / fcfs.meanMs).toFixed(3)} (target ≤ 0.8: ${ok(sjf.meanMs <= 0.8 * fcfs.meanMs)}); ` +
  `sjf p99 / fcfs = ${(sjf.p99Ms / fcfs.p99Ms).toFixed(3)} (target ≤ 1.1: ${ok(sjf.p99Ms <= 1.1 * fcfs.p99Ms)}); ` +
  `share of the oracle's gain captured = ${(100 * capture).toFixed(1)} % (target ≥ 60 %: ${ok(capture >= 0.6)})`);
if (args.json) {
  await writeJsonAtomic(args.json, { trace: args.trace, llm, requests: burst.length, concurrency: C, msPerToken, kvBudget, stream: args.stream, rounds: rounds, rows, runs, capture });
}
