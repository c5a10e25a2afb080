/**
 * `npm run bench:serve`: load and fuzz `lenpred serve` on loopback.
 *
 *  1. Throughput and latency (autocannon, N concurrent clients, one prompt per request) of micro-batching
 *     ON (max batch 32, max wait 2 ms) and OFF (max batch 1), two servers up side by side and loaded in
 *     alternating rounds (medians reported); then a zero-cost predictor for the HTTP layer's own ceiling
 *     and an overload run (4× the clients against a queue of 16) showing backpressure (503 + Retry-After).
 *  2. A fuzz run of ≥ 10,000 malformed/random requests against the batching-on server: it must answer
 *     every one with 2xx/4xx or a deliberate 503, never another 5xx, and still be alive afterwards.
 *
 * The server runs as a child process (`lenpred serve`), so the load generator does not share its event
 * loop. Predictors measured, each named in the output:
 *   - `--model DIR` if given (any kind `LengthPredictor.load` opens, e.g. a DistilBERT model directory from
 *     `lenpred train`: ONNX Runtime runs off the event loop, one run per micro-batch); otherwise a REAL n-gram baseline model (kind "ngram", from main) that the
 *     bench trains in a temp dir from ../shared (Alpaca + Vicuna lengths, ~10 s; skipped with a message when
 *     the data is absent). It predicts synchronously on the event loop, so batching can only save
 *     per-request overhead there;
 *   - the SYNTHETIC predictor: a timer-based cost model (`--synthetic-batch-ms` per call +
 *     `--synthetic-prompt-ms` per prompt) standing in for an ONNX run off the event loop with a fixed
 *     per-call cost — its batching gain follows from that cost model, not from a real network.
 * Timings on a shared 2-core machine are noisy: compare the rows of one run with each other, not runs
 * with runs. Exits 1 if the fuzz finds an unexpected 5xx or the server dies.
 *
 *   npm run bench:serve -- [--model DIR] [--connections 32] [--duration 5] [--rounds 3] [--fuzz 10000] [--json FILE]
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import cliProgress from "cli-progress";
import { writeJsonAtomic } from "../src/util/atomic.js";
import { repoRoot, sharedDataFile } from "../src/util/paths.js";
import { runFuzz, type FuzzReport } from "../test/helpers/serve-fuzz.js";

const { values: args } = parseArgs({
  options: {
    model: { type: "string" },
    connections: { type: "string", default: "32" },
    duration: { type: "string", default: "5" },
    rounds: { type: "string", default: "3" },
    fuzz: { type: "string", default: "10000" },
    "synthetic-batch-ms": { type: "string", default: "4" },
    "synthetic-prompt-ms": { type: "string", default: "0.25" },
    json: { type: "string" },
  },
});
const connections = Number(args.connections);
const duration = Number(args.duration);
const rounds = Number(args.rounds);
const fuzzN = Number(args.fuzz);

interface Server { child: ChildProcess; url: string; log: () => string }

const SYNTHETIC = ["--synthetic", "--synthetic-batch-ms", args["synthetic-batch-ms"]!, "--synthetic-prompt-ms", args["synthetic-prompt-ms"]!];
const ZERO_COST = ["--synthetic", "--synthetic-batch-ms", "0", "--synthetic-prompt-ms", "0"];

function cli(argv: string[]): void {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(repoRoot, "src", "cli.ts"), ...argv], { cwd: repoRoot, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`lenpred ${argv.join(" ")} failed (${r.status}):\n${r.stderr}`);
}

/** Train the n-gram baseline on the 10k Vicuna-labelled Alpaca prompts; undefined when ../shared is absent. */
function buildNgramModel(work: string): string | undefined {
  const alpaca = sharedDataFile("alpaca/alpaca_data.json");
  const lengths = sharedDataFile("vicuna-7b-lengths/alpaca-train-10k-length.json");
  if (!alpaca || !lengths) {
    console.log("  (no ../shared data: skipping the n-gram model, measuring the synthetic predictor only)");
    return undefined;
  }
  process.stdout.write("  training the n-gram baseline on 9,000 Alpaca prompts (Vicuna lengths) ... ");
  const t0 = performance.now();
  cli(["prepare", "-i", alpaca, "--lengths", lengths, "--label", "max", "-o", join(work, "data")]);
  cli(["baseline", "--kind", "ngram", "--data", join(work, "data"), "--save", join(work, "ngram"), "--out", join(work, "ngram.val.jsonl")]);
  console.log(`${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return join(work, "ngram");
}

async function startServer(predictorArgs: string[], extra: string[]): Promise<Server> {
  const child = spawn(process.execPath, ["--import", "tsx", join(repoRoot, "src", "cli.ts"), "serve", "--port", "0", ...predictorArgs, ...extra], { cwd: repoRoot });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m && /ready \(/.test(out)) resolve(m[1]!);
    };
    child.stdout!.on("data", check);
    child.on("exit", (code) => reject(new Error(`lenpred serve exited (${code}) before ready:\n${out}`)));
  });
  return { child, url, log: () => out };
}

async function stopServer(s: Server): Promise<number | null> {
  if (s.child.exitCode !== null) return s.child.exitCode;
  const exited = new Promise<number | null>((r) => s.child.on("exit", (code) => r(code)));
  s.child.kill("SIGTERM");
  return exited;
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(url + "/metrics")).text();
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

const PROMPTS = [
  "Give three tips for staying healthy.",
  "Write a short story about a robot who learns to paint, in about 300 words.",
  "What is the capital of France?",
  "Explain the difference between TCP and UDP, with examples of when to use each.",
  "Translate 'good morning' into Spanish.",
  "Write a Python function that checks whether a string is a palindrome, and explain it.",
];

interface LoadRow { label: string; predictor: string; clients: number; rounds: number; reqPerSec: number; p50: number; p99: number; non2xx: number; rejected503: number; errors: number; meanBatch: number }
interface Config { label: string; predictorArgs: string[]; serverArgs: string[]; clients?: number }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

/**
 * Load several server configurations in alternating rounds (A B, B A, A B, ...) against servers that stay
 * up for the whole comparison, and report per-configuration medians over the rounds: on a shared machine
 * the load drifts by the minute, and alternating spreads that drift evenly over the configurations.
 */
async function compare(configs: Config[]): Promise<LoadRow[]> {
  const servers: Server[] = [];
  try {
    for (const c of configs) servers.push(await startServer(c.predictorArgs, c.serverArgs));
    const names = await Promise.all(servers.map(async (s) => ((await (await fetch(s.url + "/v1/model")).json()) as { name: string }).name));
    const runs: autocannon.Result[][] = configs.map(() => []);
    for (let round = 0; round < rounds; round++) {
      const order = configs.map((_, i) => i);
      if (round % 2 === 1) order.reverse();
      for (const i of order) {
        const c = configs[i]!;
        let k = 0;
        const r = await autocannon({
          url: servers[i]!.url + "/v1/predict",
          connections: c.clients ?? connections,
          duration,
          method: "POST",
          headers: { "content-type": "application/json" },
          // Vary the prompt per request (a fixed body would let nothing differ between requests).
          requests: [{ setupRequest: (req) => ({ ...req, body: JSON.stringify({ prompt: PROMPTS[k++ % PROMPTS.length] }) }) }],
        });
        runs[i]!.push(r);
        console.log(`  round ${round + 1}/${rounds} ${names[i]}, ${c.label}: ${r.requests.average.toFixed(0)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms`);
      }
    }
    const rows: LoadRow[] = [];
    for (let i = 0; i < configs.length; i++) {
      const url = servers[i]!.url;
      const rejected = await metric(url, 'lenpred_rejected_total{reason="queue_full"}');
      const rs = runs[i]!;
      rows.push({
        label: configs[i]!.label, predictor: names[i]!, clients: configs[i]!.clients ?? connections, rounds,
        reqPerSec: median(rs.map((r) => r.requests.average)), p50: median(rs.map((r) => r.latency.p50)), p99: median(rs.map((r) => r.latency.p99)),
        non2xx: rs.reduce((a, r) => a + r.non2xx, 0), rejected503: Number.isNaN(rejected) ? 0 : rejected, errors: rs.reduce((a, r) => a + r.errors, 0),
        meanBatch: (await metric(url, "lenpred_batch_size_sum")) / (await metric(url, "lenpred_batch_size_count")),
      });
    }
    return rows;
  } finally {
    for (const s of servers) {
      const code = await stopServer(s);
      if (code !== 0) throw new Error(`server exited ${code}:\n${s.log()}`);
    }
  }
}

async function fuzz(predictorArgs: string[]): Promise<{ report: FuzzReport; alive: boolean; exitCode: number | null; seconds: number; predictor: string }> {
  const s = await startServer(predictorArgs, ["--max-batch", "32", "--max-wait-ms", "2"]);
  const predictor = ((await (await fetch(s.url + "/v1/model")).json()) as { name: string }).name;
  const bar = new cliProgress.SingleBar({ format: "  fuzz [{bar}] {value}/{total} requests", hideCursor: true }, cliProgress.Presets.shades_classic);
  bar.start(fuzzN, 0);
  const t0 = performance.now();
  const report = await runFuzz({ baseUrl: s.url, requests: fuzzN, seed: "bench-serve", bodyLimit: 1 << 20, maxPromptChars: 32_768, concurrency: 16, onProgress: (n) => bar.update(n) });
  bar.stop();
  const seconds = (performance.now() - t0) / 1000;
  const alive = s.child.exitCode === null && (await fetch(s.url + "/healthz").then((r) => r.status === 200, () => false));
  const exitCode = await stopServer(s);
  return { report, alive, exitCode, seconds, predictor };
}

function table(rows: LoadRow[]): string {
  const lines = [
    "| server | predictor | clients | req/s (median) | p50 ms (median) | p99 ms (median) | mean batch | non-2xx | of which 503 (queue full) | errors |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map((r) => `| ${r.label} | ${r.predictor} | ${r.clients} | ${r.reqPerSec.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.meanBatch.toFixed(1)} | ${r.non2xx} | ${r.rejected503} | ${r.errors} |`),
  ];
  return lines.join("\n");
}

async function main(): Promise<number> {
  console.log(`bench:serve — ${connections} concurrent clients, ${rounds} alternating rounds of ${duration} s per configuration (medians reported), loopback, one prompt per request\n`);
  const work = mkdtempSync(join(tmpdir(), "lenpred-bench-serve-"));
  try {
    return await runAll(work);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function runAll(work: string): Promise<number> {
  const real = args.model ?? buildNgramModel(work);
  const predictors: Array<{ what: string; argv: string[] }> = [];
  if (real) predictors.push({ what: args.model ? `model directory ${args.model}` : "n-gram baseline (real model, trained above)", argv: ["--model", real] });
  predictors.push({ what: `synthetic (${args["synthetic-batch-ms"]} ms per call + ${args["synthetic-prompt-ms"]} ms per prompt, timer-based cost model)`, argv: SYNTHETIC });

  const rows: LoadRow[] = [];
  const speedups: Array<{ predictor: string; speedup: number; p99On: number; p99Off: number }> = [];
  for (const p of predictors) {
    console.log(`predictor: ${p.what}`);
    const [on, off] = await compare([
      { label: "batching on (max batch 32, wait 2 ms)", predictorArgs: p.argv, serverArgs: ["--max-batch", "32", "--max-wait-ms", "2"] },
      { label: "batching off (max batch 1)", predictorArgs: p.argv, serverArgs: ["--max-batch", "1", "--max-wait-ms", "0"] },
    ]);
    rows.push(on!, off!);
    speedups.push({ predictor: on!.predictor, speedup: on!.reqPerSec / off!.reqPerSec, p99On: on!.p99, p99Off: off!.p99 });
  }
  console.log("server alone, and backpressure:");
  rows.push(...await compare([
    { label: "HTTP ceiling (zero-cost predictor, batching on)", predictorArgs: ZERO_COST, serverArgs: ["--max-batch", "32", "--max-wait-ms", "2"] },
    // 4x the clients against a short queue: the excess gets 503 + Retry-After at once instead of
    // queueing without bound, so admitted requests keep a bounded latency.
    { label: "overload: batching off, max queue 16", predictorArgs: SYNTHETIC, serverArgs: ["--max-batch", "1", "--max-wait-ms", "0", "--max-queue", "16", "--max-prompts", "16"], clients: connections * 4 },
  ]));
  console.log(`\n${table(rows)}\n`);
  for (const s of speedups) console.log(`${s.predictor}: batching on / off = ${s.speedup.toFixed(2)}x throughput, p99 ${s.p99On} vs ${s.p99Off} ms`);
  console.log();
  const fuzzPredictor = predictors[0]!;
  console.log(`fuzz: ${fuzzN} malformed/random requests, 16 at a time, predictor: ${fuzzPredictor.what}`);
  const f = await fuzz(fuzzPredictor.argv);
  const statuses = Object.entries(f.report.statuses).sort().map(([k, v]) => `${k}: ${v}`).join(", ");
  console.log(`  ${f.report.requests} requests in ${f.seconds.toFixed(1)} s; statuses {${statuses}}`);
  console.log(`  unexpected 5xx: ${f.report.unexpected5xx}; server alive afterwards: ${f.alive}; exit code on SIGTERM: ${f.exitCode}`);
  for (const e of f.report.examples) console.log(`    ${e}`);
  const ok = f.report.unexpected5xx === 0 && f.alive && f.exitCode === 0;
  console.log(ok ? "  fuzz: PASS" : "  fuzz: FAIL");

  if (args.json) {
    await writeJsonAtomic(args.json, { predictors: predictors.map((p) => p.what), connections, duration, rounds, load: rows, speedups, fuzz: { ...f.report, seconds: f.seconds, alive: f.alive, exitCode: f.exitCode, predictor: f.predictor } });
  }
  return ok ? 0 : 1;
}

main().then((code) => process.exit(code), (e) => {
  console.error(e);
  process.exit(1);
});
