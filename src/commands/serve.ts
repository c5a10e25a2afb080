/** `lenpred serve`: the HTTP length-prediction service for schedulers (see docs/serve.md). */
import type { Command } from "commander";
import { LenpredError } from "../util/errors.js";
import { numberOption } from "../util/number-option.js";
import { drainOnSignals, listenOrExplain } from "./server-lifecycle.js";
import { addServerOptions, type ServerCliOptions } from "./server-options.js";
import { DEFAULT_LIVENESS_STALL_MS } from "../serve/admin-thread.js";


interface ServeCliOptions extends ServerCliOptions {
  model?: string;
  synthetic?: boolean;
  syntheticBatchMs: number;
  syntheticPromptMs: number;
  maxBatch: number;
  maxWaitMs: number;
  maxQueue: number;
  maxQueueMs: number;
  warmup: boolean;
  worker: boolean;
  stateDir?: string;
  observeToken?: string;
  quantile: number;
  maxModels: number;
  retrainEvery: number;
  maxObservations: number;
  adminPort?: number;
  livenessStallMs: number;
}

export function register(program: Command): void {
  const cmd = program
    .command("serve")
    .summary("serve length predictions over HTTP for schedulers (micro-batched, Prometheus metrics, OpenAPI)")
    .description(
      "serve length predictions over HTTP for schedulers: POST /v1/predict with {prompt}, {prompts: [...]} or an OpenAI chat body " +
        "({messages: [...]}); micro-batches concurrent requests; /healthz, /readyz, /metrics (Prometheus), /openapi.json. " +
        "SIGTERM/SIGINT drain in-flight requests, then exit 0.",
    )
    .option("--model <dir|name>", "model directory (with lenpred.json) to serve, any kind LengthPredictor.load opens: distilbert (classification, regression or quantile head), ngram, linear, median, majority; or a bundled model name (alpaca-s3, vicuna-7b) or Hugging Face hub repository (org/name[@rev], hf:org/name); default: alpaca-s3")
    .option("--synthetic", "serve a fake predictor instead of a model (deterministic in prompt length; for load-testing the server only)")
    .option("--synthetic-batch-ms <ms>", "synthetic predictor: fixed cost per batch", numberOption("--synthetic-batch-ms", { min: 0 }), 2)
    .option("--synthetic-prompt-ms <ms>", "synthetic predictor: extra cost per prompt", numberOption("--synthetic-prompt-ms", { min: 0 }), 0.1)
    .option("--max-batch <n>", "most prompts per model call (1 = no micro-batching)", numberOption("--max-batch", { int: true, min: 1 }), 32)
    .option("--max-wait-ms <ms>", "longest a prompt waits for others to join its batch", numberOption("--max-wait-ms", { min: 0 }), 2)
    .option("--max-queue <n>", "most prompts waiting; beyond it requests get 503 + Retry-After", numberOption("--max-queue", { int: true, min: 1 }), 1024)
    .option("--max-queue-ms <ms>", "longest a prompt may wait in the queue; beyond it its request gets 503 + Retry-After", numberOption("--max-queue-ms", { min: 1 }), 2000)
    .option("--state-dir <dir>", "online learning: keep observations (fsynced before POST /v1/observe answers 202), snapshots and retrained members here, and resume from it on restart; one server per directory (a lock). Without it, learning is in memory only")
    .option("--observe-token <token>", "POST /v1/observe needs 'Authorization: Bearer <token>' (default: env LENPRED_OBSERVE_TOKEN; reads stay open)")
    .option("--quantile <q>", "reservation level of reserveTokens in every prediction (0 < q < 1)", numberOption("--quantile", { min: 0, max: 1 }), 0.9)
    .option("--max-models <n>", "most target models learned online; observations for a new name beyond it get 400", numberOption("--max-models", { int: true, min: 1 }), 64)
    .option("--max-observations <n>", "most observations in one POST /v1/observe", numberOption("--max-observations", { int: true, min: 1 }), 1000)
    .option("--retrain-every <n>", "retrain a target's DistilBERT member in the background every N of its observations (0 = off; needs --state-dir: see docs/online.md)", numberOption("--retrain-every", { int: true, min: 0 }), 0)
    .option("--admin-port <n>", "also answer GET /healthz, /readyz and /metrics on this port (same --host) from a dedicated thread, so probes never queue behind request traffic on the main event loop: point the Kubernetes liveness/readiness probes and Prometheus at it (0 = any free port, logged at start)", numberOption("--admin-port", { int: true, min: 0, max: 65535 }))
    .option("--liveness-stall-ms <ms>", "admin /healthz answers 503 once the main event loop has not run for this long", numberOption("--liveness-stall-ms", { min: 1 }), DEFAULT_LIVENESS_STALL_MS)
    .option("--no-worker", "run the model on the main thread instead of a worker thread (for comparison only: tokenization then blocks /healthz and /metrics)")
    .option("--no-warmup", "report ready without running one warm-up prediction first");
  addServerOptions(cmd, {
    port: 8080, shutdownTimeout: 30, drains: "in-flight requests", promptsPerRequest: "per request",
    logs: "stdout carries only pino JSON lines (\"ready\" once the model is loaded, signals, errors; no per-request lines)",
  })
    .addHelpText("after", "\nExamples:\n  lenpred serve --port 8080                     # the bundled alpaca-s3\n  lenpred serve --model vicuna-7b --port 8080\n  curl -s localhost:8080/v1/predict -H 'content-type: application/json' -d '{\"prompt\": \"Write a haiku\", \"quantile\": 0.9}'\n\n\"quantile\" (0 < q < 1) reserves for the q-quantile of the predicted length; models without a length distribution answer 400.")
    .action(async (o: ServeCliOptions) => {
      if (o.model && o.synthetic) throw new LenpredError("give at most one of --model <dir> or --synthetic");
      if (!(o.quantile > 0 && o.quantile < 1)) throw new LenpredError(`--quantile must be in (0, 1), got ${o.quantile}`);
      const observeToken = o.observeToken ?? process.env.LENPRED_OBSERVE_TOKEN ?? undefined;
      if (observeToken !== undefined && observeToken.trim() === "") throw new LenpredError("--observe-token (or LENPRED_OBSERVE_TOKEN) is empty");
      const { buildServer } = await import("../serve/server.js");
      // A model directory (or bundled model name / hub id; default the bundled one) is loaded in a worker thread
      // (tokenization and inference off the event loop), with one ONNX run per micro-batch: the DistilBERT kind
      // splits predictBatch calls into batchSize chunks. The predictor enforces the same prompt limit as the
      // request schema (one limit, not two).
      const load = { batchSize: o.maxBatch, maxPromptChars: o.maxPromptChars };
      const model = o.synthetic ? undefined : o.model ?? (await import("../predictor/bundled.js")).DEFAULT_MODEL;
      const source = model !== undefined
        ? o.worker
          ? { modelDir: model, loadOptions: load }
          : { predictor: (await import("../predictor/length-predictor.js")).LengthPredictor.load(model, load) }
        : { predictor: new (await import("../serve/synthetic.js")).SyntheticPredictor({ batchMs: o.syntheticBatchMs, promptMs: o.syntheticPromptMs }) };
      let app;
      try {
        app = await buildServer({
          ...source,
          maxBatch: o.maxBatch, maxWaitMs: o.maxWaitMs, maxQueue: o.maxQueue, maxQueueMs: o.maxQueueMs,
          limits: { bodyBytes: o.bodyLimit, maxPrompts: o.maxPrompts, maxPromptChars: o.maxPromptChars, maxMessages: o.maxMessages },
          warmup: o.warmup,
          processMetrics: true,
          online: {
            ...(o.stateDir ? { stateDir: o.stateDir } : {}),
            // Never logged: the ready line carries no options.
            ...(observeToken ? { observeToken } : {}),
            quantile: o.quantile, maxModels: o.maxModels, retrainEvery: o.retrainEvery, maxObservations: o.maxObservations,
            ...(model !== undefined && !o.worker ? { modelDir: model } : {}),
          },
          logger: { level: o.logLevel },
          ...(o.adminPort !== undefined ? { adminPort: o.adminPort, adminHost: o.host, livenessStallMs: o.livenessStallMs } : {}),
        });
      } catch (e) {
        if (e instanceof RangeError) throw new LenpredError(e.message);
        throw e;
      }
      // Listen first so /healthz answers while a big model loads; /readyz turns 200 when it is loaded.
      // Fastify logs the listening line itself (JSON, info); the model may still be loading — "ready" follows.
      if (app.lenpred.admin) app.log.info({ adminPort: app.lenpred.admin.port, livenessStallMs: o.livenessStallMs }, "admin listener (healthz, readyz, metrics) on its own thread");
      const address = await listenOrExplain(app, { host: o.host, port: o.port, backlog: o.backlog, listenTextResolver: (a) => `accepting connections at ${a}; loading the model` });
      // Everything on stdout is a pino JSON line (one logger for server and lifecycle events).
      const log = app.log;
      const stopped = drainOnSignals(app, o.shutdownTimeout, undefined, app.lenpred.fatal);
      try {
        await app.lenpred.ready;
      } catch (e) {
        await app.close();
        throw e;
      }
      const p = app.lenpred.predictor!;
      // Logged only once the model is loaded (and warmed up): the line to wait for.
      const online = app.lenpred.online;
      log.info({
        address, predictor: p.name, buckets: p.buckets.edges.length, maxBatch: o.maxBatch, maxWaitMs: o.maxWaitMs, worker: !o.synthetic && o.worker,
        stateDir: o.stateDir ?? null, resumed: online?.stats().resumed ?? 0, observeAuth: observeToken !== undefined,
      }, "ready");
      process.exitCode = await stopped;
    });
}
