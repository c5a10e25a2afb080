/** `lenpred serve`: the HTTP length-prediction service for schedulers (see docs/serve.md). */
import { Option, type Command } from "commander";
import { LenpredError } from "../util/errors.js";
import { numberOption } from "../util/number-option.js";
import { DEFAULT_LIMITS } from "../serve/limits.js";


interface ServeCliOptions {
  model?: string;
  synthetic?: boolean;
  syntheticBatchMs: number;
  syntheticPromptMs: number;
  host: string;
  port: number;
  maxBatch: number;
  maxWaitMs: number;
  maxQueue: number;
  bodyLimit: number;
  maxPrompts: number;
  maxPromptChars: number;
  maxMessages: number;
  shutdownTimeout: number;
  logLevel: string;
  warmup: boolean;
}

export function register(program: Command): void {
  program
    .command("serve")
    .summary("serve length predictions over HTTP for schedulers (micro-batched, Prometheus metrics, OpenAPI)")
    .description(
      "serve length predictions over HTTP for schedulers: POST /v1/predict with {prompt}, {prompts: [...]} or an OpenAI chat body " +
        "({messages: [...]}); micro-batches concurrent requests; /healthz, /readyz, /metrics (Prometheus), /openapi.json. " +
        "SIGTERM/SIGINT drain in-flight requests, then exit 0.",
    )
    .option("--model <dir>", "model directory (with lenpred.json) to serve, any kind LengthPredictor.load opens: distilbert (classification, regression or quantile head), ngram, linear, median, majority")
    .option("--synthetic", "serve a fake predictor instead of a model (deterministic in prompt length; for load-testing the server only)")
    .option("--synthetic-batch-ms <ms>", "synthetic predictor: fixed cost per batch", numberOption("--synthetic-batch-ms", { min: 0 }), 2)
    .option("--synthetic-prompt-ms <ms>", "synthetic predictor: extra cost per prompt", numberOption("--synthetic-prompt-ms", { min: 0 }), 0.1)
    .option("--host <addr>", "address to listen on (0.0.0.0 for all interfaces)", "127.0.0.1")
    .option("--port <n>", "TCP port (0 = any free port, printed at start)", numberOption("--port", { int: true, min: 0 }), 8080)
    .option("--max-batch <n>", "most prompts per model call (1 = no micro-batching)", numberOption("--max-batch", { int: true, min: 1 }), 32)
    .option("--max-wait-ms <ms>", "longest a prompt waits for others to join its batch", numberOption("--max-wait-ms", { min: 0 }), 2)
    .option("--max-queue <n>", "most prompts waiting; beyond it requests get 503 + Retry-After", numberOption("--max-queue", { int: true, min: 1 }), 1024)
    .option("--body-limit <bytes>", "largest request body (413 beyond)", numberOption("--body-limit", { int: true, min: 1 }), 1 << 20)
    .option("--max-prompts <n>", "most prompts per request", numberOption("--max-prompts", { int: true, min: 1 }), 64)
    .option("--max-prompt-chars <n>", "longest prompt / message content, in characters", numberOption("--max-prompt-chars", { int: true, min: 1 }), DEFAULT_LIMITS.maxPromptChars)
    .option("--max-messages <n>", "most messages in a chat body", numberOption("--max-messages", { int: true, min: 1 }), 256)
    .option("--shutdown-timeout <s>", "on SIGTERM, give in-flight requests this long before exiting 1", numberOption("--shutdown-timeout", { min: 0 }), 30)
    .option("--no-warmup", "report ready without running one warm-up prediction first")
    .addOption(new Option("--log-level <level>", "server log level (JSON lines on stdout)").choices(["fatal", "error", "warn", "info", "debug"]).default("warn"))
    .addHelpText("after", "\nExamples:\n  lenpred serve --model models/distilbert --port 8080\n  curl -s localhost:8080/v1/predict -H 'content-type: application/json' -d '{\"prompt\": \"Write a haiku\", \"quantile\": 0.9}'\n\n\"quantile\" (0 < q < 1) reserves for the q-quantile of the predicted length; models without a length distribution answer 400.")
    .action(async (o: ServeCliOptions) => {
      if (!o.model === !o.synthetic) throw new LenpredError("give exactly one of --model <dir> or --synthetic");
      const { buildServer } = await import("../serve/server.js");
      let predictor;
      if (o.model) {
        const { LengthPredictor } = await import("../predictor/length-predictor.js");
        // One ONNX run per micro-batch: the DistilBERT kind splits predictBatch calls into batchSize chunks.
        // The predictor enforces the same prompt limit as the request schema (one limit, not two).
        predictor = LengthPredictor.load(o.model, { batchSize: o.maxBatch, maxPromptChars: o.maxPromptChars });
      } else {
        const { SyntheticPredictor } = await import("../serve/synthetic.js");
        predictor = new SyntheticPredictor({ batchMs: o.syntheticBatchMs, promptMs: o.syntheticPromptMs });
      }
      let app;
      try {
        app = await buildServer({
          predictor,
          maxBatch: o.maxBatch, maxWaitMs: o.maxWaitMs, maxQueue: o.maxQueue,
          limits: { bodyBytes: o.bodyLimit, maxPrompts: o.maxPrompts, maxPromptChars: o.maxPromptChars, maxMessages: o.maxMessages },
          warmup: o.warmup,
          processMetrics: true,
          logger: { level: o.logLevel },
        });
      } catch (e) {
        if (e instanceof RangeError) throw new LenpredError(e.message);
        throw e;
      }
      // Listen first so /healthz answers while a big model loads; /readyz turns 200 when it is loaded.
      let address: string;
      try {
        address = await app.listen({ host: o.host, port: o.port });
      } catch (e) {
        await app.close();
        const code = (e as NodeJS.ErrnoException).code;
        throw new LenpredError(`cannot listen on ${o.host}:${o.port} (${code ?? (e as Error).message})`);
      }
      process.stdout.write(`lenpred serve: listening on ${address}\n`);
      const stopped = new Promise<number>((resolve) => {
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) {
            process.stderr.write(`lenpred serve: second ${signal}, exiting without draining\n`);
            process.exit(1);
          }
          stopping = true;
          process.stdout.write(`lenpred serve: ${signal}, draining in-flight requests\n`);
          const timer = setTimeout(() => {
            process.stderr.write(`lenpred serve: requests still in flight after ${o.shutdownTimeout}s, exiting\n`);
            process.exit(1);
          }, o.shutdownTimeout * 1000);
          timer.unref();
          app.close().then(() => {
            clearTimeout(timer);
            process.stdout.write("lenpred serve: stopped\n");
            resolve(0);
          }, () => resolve(1));
        };
        process.on("SIGTERM", () => stop("SIGTERM"));
        process.on("SIGINT", () => stop("SIGINT"));
      });
      try {
        await app.lenpred.ready;
      } catch (e) {
        await app.close();
        throw e;
      }
      const p = app.lenpred.predictor!;
      process.stdout.write(`lenpred serve: ready (predictor ${p.name}, ${p.buckets.edges.length} buckets, max batch ${o.maxBatch}, max wait ${o.maxWaitMs} ms)\n`);
      process.exitCode = await stopped;
    });
}
