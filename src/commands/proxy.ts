/** `lenpred proxy`: put the length predictor in front of an OpenAI-compatible LLM server (see docs/proxy.md). */
import { Option, type Command } from "commander";
import { LenpredError } from "../util/errors.js";
import { numberOption } from "../util/number-option.js";
import { drainOnSignals, listenOrExplain } from "./server-lifecycle.js";
import { addServerOptions, type ServerCliOptions } from "./server-options.js";

interface ProxyCliOptions extends ServerCliOptions {
  upstream?: string;
  upstreamKind: "openai" | "vllm";
  model: string;
  stateDir?: string;
  policy: "fcfs" | "sjf" | "s3";
  maxConcurrency: number;
  maxQueue: number;
  kvBudgetTokens?: number;
  sjfAgingSeconds: number;
  capMaxTokens: boolean;
  quantile?: number;
  tokenizer: string;
  upstreamTimeout: number;
}

export function register(program: Command): void {
  const cmd = program
    .command("proxy")
    .summary("OpenAI-compatible proxy in front of an LLM server: SJF / S3 admission from predicted lengths, true lengths observed")
    .description(
      "an OpenAI-compatible reverse proxy: POST /v1/chat/completions and /v1/completions (streaming or not) are predicted, wait in the " +
        "proxy under --policy with at most --max-concurrency in flight upstream, and are forwarded unchanged (Authorization included); the " +
        "answer length (usage.completion_tokens, or the streamed text counted with --tokenizer) is observed for the request's model. Every " +
        "other path (e.g. /v1/models) is forwarded as is. Own endpoints: /healthz, /readyz, /metrics. SIGTERM/SIGINT drain, then exit 0.",
    )
    .option("--upstream <url>", "base URL of the OpenAI-compatible server, e.g. http://127.0.0.1:8000 (vLLM), :8080 (llama.cpp), :11434 (Ollama)")
    .addOption(new Option("--upstream-kind <kind>", "vllm: also send vLLM's per-request `priority` (predicted tokens; lower = earlier) — run vLLM with --scheduling-policy priority").choices(["openai", "vllm"]).default("openai"))
    .option("--model <dir|name>", "length model: a directory (any kind LengthPredictor.load opens), a bundled model name (alpaca-s3, vicuna-7b) or a Hugging Face hub id (org/name[@rev])", "vicuna-7b")
    .option("--state-dir <dir>", "online-learning state: observations are stored durably and learned again after a restart (without it, learning is in memory only)")
    .addOption(new Option("--policy <name>", "admission order: fcfs (arrival), sjf (shortest predicted first, with aging), s3 (sjf + KV budget)").choices(["fcfs", "sjf", "s3"]).default("fcfs"))
    .option("--max-concurrency <n>", "most requests in flight upstream (match the engine's batch size, e.g. vLLM --max-num-seqs)", numberOption("--max-concurrency", { int: true, min: 1 }), 8)
    .option("--max-queue <n>", "most requests waiting in the proxy; beyond it 503 + Retry-After", numberOption("--max-queue", { int: true, min: 1 }), 1024)
    .option("--kv-budget-tokens <n>", "s3: KV tokens (prompt + reserveTokens) the in-flight requests may reserve in total", numberOption("--kv-budget-tokens", { int: true, min: 1 }))
    .option("--sjf-aging-seconds <s>", "sjf/s3 aging half-life: each such wait counts as halving the predicted length", numberOption("--sjf-aging-seconds", { min: 0.001 }), 10)
    .option("--cap-max-tokens", "set max_tokens to min(client's, reserveTokens): the reservation becomes a hard limit (answers may be cut)", false)
    .option("--quantile <q>", "reserveTokens = the online learner's calibrated q-quantile of the length (default 0.9)", numberOption("--quantile", { min: 0, max: 1, maxExclusive: true }))
    .option("--tokenizer <spec>", "counts prompt tokens (s3) and streamed answers when the upstream sends no usage", "llama")
    .option("--upstream-timeout <s>", "upstream headers and body timeout (504 beyond)", numberOption("--upstream-timeout", { min: 0.001 }), 600);
  addServerOptions(cmd, {
    port: 8088, shutdownTimeout: 60, drains: "queued and in-flight requests", promptsPerRequest: "in one /v1/completions request",
    logs: "JSON lines on stdout; never includes headers",
  })
    .addHelpText("after", "\nExamples:\n  vllm serve meta-llama/Llama-3.1-8B-Instruct --port 8000 --scheduling-policy priority\n" +
      "  lenpred proxy --upstream http://127.0.0.1:8000 --upstream-kind vllm --policy sjf --max-concurrency 64 --port 8088\n" +
      "  curl -s localhost:8088/v1/chat/completions -H 'content-type: application/json' -d '{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}'")
    .action(async (o: ProxyCliOptions) => {
      if (o.upstream === undefined) throw new LenpredError("give --upstream <url> (the OpenAI-compatible server to put the proxy in front of)", { field: "--upstream" });
      const upstream = o.upstream;
      if (o.quantile !== undefined && !(o.quantile > 0)) throw new LenpredError(`--quantile expects a number > 0 and < 1, got '${o.quantile}'`, { field: "--quantile" });
      if (o.policy === "s3" && o.kvBudgetTokens === undefined) throw new LenpredError("--policy s3 needs --kv-budget-tokens <n>", { field: "--kv-budget-tokens" });
      try {
        if (!/^https?:$/.test(new URL(upstream).protocol)) throw new Error("not http");
      } catch {
        throw new LenpredError(`--upstream must be a URL like http://127.0.0.1:8000, got '${o.upstream}'`, { field: "--upstream" });
      }
      const [{ buildProxy }, { fromLearner }, { OnlineLearner }, { OnlineService }, { loadTokenizer }] = await Promise.all([
        import("../proxy/server.js"), import("../proxy/predictor.js"), import("../online/learner.js"), import("../online/service.js"), import("../tokenizers/index.js"),
      ]);
      const tokenizer = await loadTokenizer(o.tokenizer);
      // The online learner behind the proxy: predictions per upstream model, learned from what the proxy observes
      // (durably under --state-dir, in memory otherwise). No background retraining in the proxy process.
      const predictor = (async () => {
        const learner = await OnlineLearner.load(o.model, o.quantile !== undefined ? { quantile: o.quantile } : {});
        const service = await OnlineService.open(learner, { stateDir: o.stateDir, retrain: false });
        return { ...fromLearner(service), name: "online", close: async () => { await service.close(); await learner.dispose(); } };
      })();
      let app;
      try {
        app = await buildProxy({
          upstream, upstreamKind: o.upstreamKind, predictor,
          policy: o.policy, maxConcurrency: o.maxConcurrency, maxQueue: o.maxQueue, kvBudgetTokens: o.kvBudgetTokens,
          agingHalfLifeSeconds: o.sjfAgingSeconds, capMaxTokens: o.capMaxTokens,
          countTokens: (t) => tokenizer.count(t, { addSpecialTokens: false }),
          upstreamTimeoutMs: o.upstreamTimeout * 1000,
          limits: { bodyBytes: o.bodyLimit, maxPrompts: o.maxPrompts, maxPromptChars: o.maxPromptChars, maxMessages: o.maxMessages },
          processMetrics: true,
          logger: { level: o.logLevel },
        });
      } catch (e) {
        if (e instanceof RangeError) throw new LenpredError(e.message);
        throw e;
      }
      const address = await listenOrExplain(app, { host: o.host, port: o.port, backlog: o.backlog });
      app.log.info({ address, upstream: new URL(upstream).origin }, "listening; loading the model");
      const stopped = drainOnSignals(app, o.shutdownTimeout, () => ({ queued: app.lenpredProxy.scheduler.queued, inFlight: app.lenpredProxy.scheduler.inFlight }));
      try {
        await app.lenpredProxy.ready;
      } catch (e) {
        await app.close();
        throw e;
      }
      // Logged only once the model is loaded: the line to wait for.
      app.log.info({ address, predictor: app.lenpredProxy.predictor!.name, policy: o.policy, maxConcurrency: o.maxConcurrency }, "ready");
      process.exitCode = await stopped;
    });
}
