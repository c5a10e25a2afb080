/** `lenpred simulate`: what length predictions buy on a KV-cache memory / scheduling model of one GPU. */
import type { Command } from "commander";
import { numberOption, type NumberBounds } from "../util/number-option.js";

const parseNum = (name: string, b: NumberBounds = {}) => numberOption(`--${name}`, b);

export function register(program: Command): void {
  program
    .command("simulate")
    .summary("simulate S³-style scheduling on a KV-cache memory model: what the predictions buy")
    .description("simulate S³-style scheduling on a KV-cache memory model: throughput/latency of max-length reservation, "
      + "S³ (predicted bucket), oracle, paged (vLLM-like) and shortest-predicted-first")
    .requiredOption("--data <path>", "prepared directory (uses <split>.jsonl + scheme.json) or a split JSONL with scheme.json beside it")
    .option("--split <name>", "split to replay: train, val, test, or all (= every split present, concatenated)", "test")
    .option("--limit <n>", "replay only the first n requests", parseNum("limit", { int: true, min: 1 }))
    .option("--predictions <file>", "predictions JSONL for the split (PredictionRecord lines joined by index)")
    .option("--predictor <spec>", "synthetic predictions when no file: oracle | constant | constant:<bucket> | noisy:<sigma> (log-normal noise)", "oracle")
    .option("--model <preset>", "model preset: gpt-j-6b | llama-2-7b | vicuna-7b", "gpt-j-6b")
    .option("--gpu <preset>", "GPU preset: a100-80gb | a100-40gb", "a100-80gb")
    .option("--layers <n>", "custom: transformer layers", parseNum("layers", { int: true, min: 1 }))
    .option("--heads <n>", "custom: query heads", parseNum("heads", { int: true, min: 1 }))
    .option("--kv-heads <n>", "custom: key/value heads", parseNum("kv-heads", { int: true, min: 1 }))
    .option("--head-dim <n>", "custom: head dimension", parseNum("head-dim", { int: true, min: 1 }))
    .option("--dtype-bytes <n>", "custom: bytes per KV element / weight", parseNum("dtype-bytes", { int: true, min: 1 }))
    .option("--weight-gb <x>", "custom: weight size in GB (1e9 bytes)", parseNum("weight-gb", { min: 0 }))
    .option("--max-seq-len <n>", "custom: max prompt + output tokens (what max-length reservation reserves)", parseNum("max-seq-len", { int: true, min: 2 }))
    .option("--gpu-mem-gib <x>", "custom: GPU memory in GiB", parseNum("gpu-mem-gib", { min: 0 }))
    .option("--hbm-gbps <x>", "custom: HBM bandwidth in GB/s", parseNum("hbm-gbps", { min: 0 }))
    .option("--tflops <x>", "custom: peak fp16 TFLOP/s", parseNum("tflops", { min: 0 }))
    .option("--mem-util <f>", "fraction of GPU memory for weights + KV (default 0.9)", parseNum("mem-util", { min: 0 }))
    .option("--bw-efficiency <f>", "achieved / peak bandwidth (default 0.8)", parseNum("bw-efficiency", { min: 0 }))
    .option("--flops-efficiency <f>", "achieved / peak FLOP/s (default 0.6)", parseNum("flops-efficiency", { min: 0 }))
    .option("--iter-overhead-ms <x>", "fixed cost per iteration in ms (default 1)", parseNum("iter-overhead-ms", { min: 0 }))
    .option("--rate <r>", "online: Poisson arrivals at r requests/s (default: offline, all at t = 0)", parseNum("rate", { min: 0 }))
    .option("--policies <list>", "comma-separated: max-length, s3, oracle, paged, s3-sjf, paged-sjf, max-length-iter",
      "max-length,s3,oracle,paged,s3-sjf,paged-sjf")
    .option("--block-size <n>", "paged block size in tokens", parseNum("block-size", { int: true, min: 1 }), 16)
    .option("--max-batch <n>", "cap on running sequences (default: memory-limited only)", parseNum("max-batch", { int: true, min: 1 }))
    .option("--lookahead <n>", "waiting requests first-fit admission may skip per iteration", parseNum("lookahead", { int: true, min: 1 }), 64)
    .option("--seed <n>", "seed for noisy predictions and Poisson arrivals", parseNum("seed", { int: true }), 0)
    .option("--out <file>", "write the full JSON report here")
    .option("--plots <dir>", "write throughput.svg, memory.svg and latency-cdf.svg here")
    .option("--json", "print the report as one JSON object on stdout; the human-readable table then goes to stderr")
    .addHelpText("after", `
Step time per iteration = overhead + max(bytes / (HBM·bwEff), FLOPs / (peak·flopsEff)), with bytes = weights +
KV read/written and FLOPs = 2·params per token + attention; see docs/simulate.md.

Examples:
  lenpred simulate --data prep/ --split test --predictions preds.jsonl --plots plots/
  lenpred simulate --data prep/ --split all --predictor noisy:0.5 --json
  lenpred simulate --data prep/ --model llama-2-7b --gpu a100-40gb --rate 20 --policies s3,paged`)
    .action(async (o: Record<string, unknown>) => {
      const { runSimulation } = await import("../simulate/index.js");
      const { writePlots } = await import("../simulate/plots.js");
      const { writeJsonAtomic } = await import("../util/atomic.js");
      const cliProgress = (await import("cli-progress")).default;
      const policies = String(o.policies).split(",").map((s) => s.trim()).filter(Boolean);
      const num = (k: string) => o[k] as number | undefined;
      const scale = (k: string, f: number) => (num(k) === undefined ? undefined : num(k)! * f);
      const bar = new cliProgress.SingleBar({ format: "{policy} [{bar}] {value}/{total} requests", clearOnComplete: true, stream: process.stderr },
        cliProgress.Presets.shades_classic);
      let barActive = false;
      const { report, results } = await runSimulation({
        data: String(o.data), split: String(o.split), limit: num("limit"),
        predictions: o.predictions as string | undefined, predictor: o.predictor as string,
        model: String(o.model), gpu: String(o.gpu),
        overrides: {
          layers: num("layers"), heads: num("heads"), kvHeads: num("kvHeads"), headDim: num("headDim"), dtypeBytes: num("dtypeBytes"),
          weightBytes: scale("weightGb", 1e9), maxSeqLen: num("maxSeqLen"), gpuMemoryBytes: scale("gpuMemGib", 2 ** 30),
          hbmBytesPerS: scale("hbmGbps", 1e9), peakFlops: scale("tflops", 1e12), memUtil: num("memUtil"),
          bwEfficiency: num("bwEfficiency"), flopsEfficiency: num("flopsEfficiency"), iterOverheadS: scale("iterOverheadMs", 1e-3),
        },
        rate: num("rate"), seed: num("seed")!,
        policies: policies as never,
        sim: {
          blockSize: num("blockSize"), maxBatch: num("maxBatch"), lookahead: num("lookahead"), timeline: Boolean(o.plots),
          onProgress: (done) => { if (barActive) bar.update(done); },
        },
        onPolicy: (name, trace) => {
          if (barActive) bar.stop();
          bar.start(trace.n, 0, { policy: name.padEnd(15) });
          barActive = true;
        },
      }).finally(() => { if (barActive) bar.stop(); });

      // With --json, stdout carries only the JSON (a pipe into jq must not see the table).
      const say = o.json ? (text: string) => void process.stderr.write(text + "\n") : (text: string) => console.log(text);
      printTable(report, say);
      if (o.out) await writeJsonAtomic(String(o.out), report);
      if (o.plots) {
        const title = `${(report.profile.model as { name: string }).name} on ${(report.profile.gpu as { name: string }).name}, ${report.trace.requests} requests`;
        const files = await writePlots(String(o.plots), results, title);
        say(`plots: ${files.join(", ")}`);
      }
      if (o.json) console.log(JSON.stringify(report));
    });
}

function printTable(report: import("../simulate/index.js").SimulationReport, say: (text: string) => void): void {
  const t = report.trace as Record<string, unknown>;
  const pr = report.profile as Record<string, unknown>;
  say(`trace ${t.source}: ${t.requests} requests, mean prompt ${t.mean_prompt_tokens} / output ${t.mean_output_tokens} tokens, `
    + `arrivals ${typeof t.arrivals === "string" ? t.arrivals : `poisson ${(t.arrivals as { poisson_rate_per_s: number }).poisson_rate_per_s}/s`}`);
  const rc = report.predictor.reserve_tokens_coverage;
  say(`predictor ${report.predictor.source}: bucket accuracy ${report.predictor.bucket_accuracy}, under-predicted ${report.predictor.under_predicted_fraction}`
    + (rc === undefined ? "" : `; S³ reserves reserveTokens (coverage ${rc})`));
  say(`profile: KV ${pr.kv_bytes_per_token} B/token, capacity ${pr.kv_capacity_tokens} tokens, max-length batch ${pr.max_length_batch}`);
  const cols = ["policy", "tok/s", "req/s", "x max-len", "p50 s", "p99 s", "batch", "mem used", "mem resv", "preempt", "recomputed", "wall s"];
  const rows = Object.entries(report.policies).map(([name, m]) => [
    name, m!.throughput_tokens_per_s.toFixed(0), m!.throughput_requests_per_s.toFixed(2),
    report.speedup_vs_max_length?.[name as keyof typeof report.policies]?.toFixed(2) ?? "-",
    m!.latency_p50_s.toFixed(1), m!.latency_p99_s.toFixed(1), m!.mean_batch_size.toFixed(1),
    m!.memory_utilization.toFixed(3), m!.memory_reserved_fraction.toFixed(3), String(m!.preemptions), String(m!.recomputed_tokens),
    m!.wall_s.toFixed(2),
  ]);
  const widths = cols.map((c, k) => Math.max(c.length, ...rows.map((r) => r[k]!.length)));
  const line = (r: string[]) => r.map((c, k) => (k === 0 ? c.padEnd(widths[k]!) : c.padStart(widths[k]!))).join("  ");
  say(line(cols));
  for (const r of rows) say(line(r));
}
