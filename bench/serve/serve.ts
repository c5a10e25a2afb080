/**
 * `npm run bench:serve`: load and fuzz `lenpred serve` on loopback.
 *
 *  1. Throughput and latency (autocannon, N concurrent clients, one prompt per request) of micro-batching
 *     ON (max batch 32, max wait 2 ms) and OFF (max batch 1), two servers up side by side and loaded in
 *     alternating rounds (medians reported); then a zero-cost predictor for the HTTP layer's own ceiling
 *     and an overload run (4× the clients against a queue of 16) showing backpressure (503 + Retry-After).
 *  2. Liveness under load (issue 9): /healthz and /metrics latency, probed one at a time, while 16 clients send
 *     heavy requests (31 prompts × 32,000 characters ≈ 1 MB each) and then during a burst of 5,000
 *     simultaneous connections — for the model in a worker thread (the default) and, as the control in the
 *     same run, on the main thread (`--no-worker`, the old behaviour); and with `--admin-port`, the probes sent
 *     to the admin listener (its own thread) instead of the main port. Model: `--model DIR`, else the bundled
 *     models/alpaca-s3 (DistilBERT + n-gram ensemble).
 *  3. A fuzz run of ≥ 10,000 malformed/random requests against the batching-on server: it must answer
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
import { spawn, spawnSync } from "node:child_process";
import http from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import cliProgress from "cli-progress";
import { writeJsonAtomic } from "../../src/util/atomic.js";
import { repoRoot, sharedDataFile } from "../../src/util/paths.js";
import { runFuzz, type FuzzReport } from "../lib/serve-fuzz.js";
import { startServeProcess, type ServeProcess } from "../lib/serve-process.js";

const { values: args } = parseArgs({
  options: {
    model: { type: "string" },
    connections: { type: "string", default: "32" },
    duration: { type: "string", default: "5" },
    rounds: { type: "string", default: "3" },
    fuzz: { type: "string", default: "10000" },
    burst: { type: "string", default: "5000" },
    "liveness-seconds": { type: "string", default: "8" },
    "only-liveness": { type: "boolean", default: false },
    "synthetic-batch-ms": { type: "string", default: "4" },
    "synthetic-prompt-ms": { type: "string", default: "0.25" },
    json: { type: "string" },
  },
});
const connections = Number(args.connections);
const duration = Number(args.duration);
const rounds = Number(args.rounds);
const fuzzN = Number(args.fuzz);

type Server = ServeProcess;

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
  return startServeProcess([...predictorArgs, ...extra]);
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
  const badExits: string[] = [];
  let result: LoadRow[];
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
    result = rows;
  } finally {
    // Stop every server; a bad exit is reported once all are down, and never masks an error of the run itself.
    for (const s of servers) {
      const code = await stopServer(s);
      if (code !== 0) badExits.push(`server exited ${code}:\n${s.log()}`);
    }
  }
  if (badExits.length > 0) throw new Error(badExits.join("\n"));
  return result;
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

interface Probe { n: number; p50: number; p99: number; max: number; failed: number }
interface LivenessRow { label: string; phase: string; healthz: Probe; metrics: Probe; predict: { ok: number; s503: number; other: number } }

const pct = (xs: number[], q: number) => (xs.length === 0 ? Number.NaN : [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!);

/**
 * The prober runs in its own process (like a kubelet): in the bench process its timings would include the
 * load generator's own event-loop stalls. It GETs `path` one request at a time on a fresh connection every
 * 20 ms until stdin closes, then prints the latencies (ms) as JSON.
 */
const PROBER = `
import http from "node:http";
const [url] = process.argv.slice(1);
const ms = []; let failed = 0; let stop = false;
process.stdin.on("end", () => (stop = true)); process.stdin.resume();
const agent = new http.Agent({ keepAlive: false });
while (!stop) {
  const t0 = performance.now();
  const ok = await new Promise((resolve) => {
    const req = http.get(url, { agent, timeout: 20000 }, (res) => { res.resume(); res.on("end", () => resolve(res.statusCode === 200)); });
    req.on("error", () => resolve(false)); req.on("timeout", () => req.destroy());
  });
  if (ok) ms.push(performance.now() - t0); else failed++;
  await new Promise((r) => setTimeout(r, 20));
}
process.stdout.write(JSON.stringify({ ms, failed }));
`;

function startProbe(url: string): { stop: () => Promise<Probe> } {
  const child = spawn(process.execPath, ["--input-type=module", "-e", PROBER, url], { stdio: ["pipe", "pipe", "inherit"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  const done = new Promise<void>((r) => child.on("exit", () => r()));
  return {
    async stop() {
      child.stdin!.end();
      await done;
      const { ms, failed } = JSON.parse(out) as { ms: number[]; failed: number };
      return { n: ms.length, p50: pct(ms, 0.5), p99: pct(ms, 0.99), max: Math.max(...ms), failed };
    },
  };
}

/** One predict POST on its own connection; resolves with the status (0 = connection error). */
function postOnce(url: string, body: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(url + "/v1/predict", { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", () => resolve(0));
    req.end(body);
  });
}

async function liveness(modelDir: string): Promise<LivenessRow[]> {
  const seconds = Number(args["liveness-seconds"]);
  const burst = Number(args.burst);
  const words = "Explain how TCP congestion control works and why it matters for web performance. ".repeat(400).slice(0, 32_000);
  const heavy = JSON.stringify({ prompts: Array.from({ length: 31 }, (_, i) => `${i} ${words}`) });
  const small = JSON.stringify({ prompt: PROMPTS[0] });
  const rows: LivenessRow[] = [];
  const configs = [
    ["worker thread + --admin-port, probes on the admin port", ["--admin-port", "0"]],
    ["worker thread (default), probes on the main port", []],
    ["main thread (--no-worker, before)", ["--no-worker"]],
  ] as const;
  for (const [label, extra] of configs) {
    const s = await startServer(["--model", modelDir], ["--max-batch", "32", "--max-wait-ms", "2", ...extra]);
    try {
      // The admin listener's port is logged before the main one listens (pino line with adminPort).
      const adminPort = /"adminPort":(\d+)/.exec(s.log())?.[1];
      if (extra.length > 0 && extra[0] === "--admin-port" && !adminPort) throw new Error(`no adminPort in the server log:\n${s.log()}`);
      const probeUrl = adminPort ? `http://127.0.0.1:${adminPort}` : s.url;
      for (const phase of ["16 clients × 1 MB requests", `burst of ${burst} connections`]) {
        const statuses: number[] = [];
        const probes = [startProbe(probeUrl + "/healthz"), startProbe(probeUrl + "/metrics")] as const;
        await new Promise((r) => setTimeout(r, 300)); // probers up
        const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
        if (phase.startsWith("16")) {
          const until = performance.now() + seconds * 1000;
          await Promise.all(Array.from({ length: 16 }, async () => {
            while (performance.now() < until) statuses.push(await postOnce(s.url, heavy, agent));
          }));
        } else {
          // Every connection at once, each with one small request, plus 16 heavy ones.
          statuses.push(...await Promise.all([
            ...Array.from({ length: burst }, () => postOnce(s.url, small, new http.Agent({ keepAlive: false }))),
            ...Array.from({ length: 16 }, () => postOnce(s.url, heavy, agent)),
          ]));
        }
        const [healthz, metrics] = await Promise.all([probes[0].stop(), probes[1].stop()]);
        agent.destroy();
        const predict = { ok: statuses.filter((x) => x === 200).length, s503: statuses.filter((x) => x === 503).length, other: statuses.filter((x) => x !== 200 && x !== 503).length };
        rows.push({ label, phase, healthz, metrics, predict });
        console.log(`  ${label}, ${phase}: /healthz p50 ${healthz.p50.toFixed(1)} / p99 ${healthz.p99.toFixed(1)} / max ${healthz.max.toFixed(0)} ms (${healthz.n} probes, ${healthz.failed} failed); /metrics p99 ${metrics.p99.toFixed(1)} ms; predict 200 × ${predict.ok}, 503 × ${predict.s503}, other × ${predict.other}`);
      }
    } finally {
      await stopServer(s);
    }
  }
  return rows;
}

function livenessTable(rows: LivenessRow[]): string {
  return [
    "| model runs on | load | /healthz p50 ms | /healthz p99 ms | /healthz max ms | /metrics p99 ms | probes (failed) | predict 200 / 503 / other |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
    ...rows.map((r) => `| ${r.label} | ${r.phase} | ${r.healthz.p50.toFixed(1)} | ${r.healthz.p99.toFixed(1)} | ${r.healthz.max.toFixed(0)} | ${r.metrics.p99.toFixed(1)} | ${r.healthz.n} (${r.healthz.failed}) | ${r.predict.ok} / ${r.predict.s503} / ${r.predict.other} |`),
  ].join("\n");
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
  const livenessModel = args.model ?? join(repoRoot, "models", "alpaca-s3");
  console.log(`liveness: /healthz and /metrics under heavy load, model ${livenessModel}`);
  const live = await liveness(livenessModel);
  console.log(`\n${livenessTable(live)}\n`);
  if (args["only-liveness"]) {
    if (args.json) await writeJsonAtomic(args.json, { liveness: live });
    return 0;
  }
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
    await writeJsonAtomic(args.json, { liveness: live, predictors: predictors.map((p) => p.what), connections, duration, rounds, load: rows, speedups, fuzz: { ...f.report, seconds: f.seconds, alive: f.alive, exitCode: f.exitCode, predictor: f.predictor } });
  }
  return ok ? 0 : 1;
}

main().then((code) => process.exit(code), (e) => {
  console.error(e);
  process.exit(1);
});
