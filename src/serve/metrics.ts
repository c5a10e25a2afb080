/**
 * Prometheus metrics of one server instance. Each server gets its own Registry (not prom-client's
 * global one) so that several servers in one process — tests, the bench — never share counters.
 * Route labels are route *templates* ("unmatched" for 404s), so a fuzzer cannot explode label cardinality.
 * The exposition passes `promtool check metrics` (test/serve-metrics.test.ts).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { BucketScheme } from "../data/buckets.js";
import type { OnlineService, ServiceStats } from "../online/service.js";
import type { Prediction } from "../model/prediction.js";
import { repoRoot } from "../util/paths.js";

export interface ModelInfo {
  /** Label value naming the model: the model directory's name, or the predictor's name. */
  model: string;
  kind: string;
  tokenizer: string;
  buckets: BucketScheme;
}

export interface ServeMetrics {
  registry: Registry;
  requests: Counter<"method" | "route" | "status">;
  latency: Histogram<"route">;
  prompts: Counter;
  batchSize: Histogram;
  batchSeconds: Histogram;
  batchFailures: Counter;
  rejected: Counter<"reason">;
  queueDepth: Gauge;
  /** Called once the model is loaded: model info and the per-model prediction histograms. */
  registerModel(info: ModelInfo): void;
  /** Record what was predicted (expected tokens and the reservation) for the loaded model. */
  observePredictions(preds: readonly Prediction[]): void;
  /** Per-target live quality of online learning, read from `OnlineService.stats()` at scrape time. */
  registerOnline(svc: OnlineService): void;
  /** POST /v1/observe outcomes: `result` = accepted | invalid | unauthorized | overloaded. */
  observeRequests: Counter<"result">;
}

const PREFIX = "lenpred_";

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version?: string }).version ?? "unknown";
  } catch {
    return "unknown";
  }
}

/**
 * prom-client's defaults minus `nodejs_active_{handles,requests,resources}_total`: gauges named like
 * counters (promtool rejects them); the same numbers remain in `nodejs_active_*` (by type).
 */
function processMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, prefix: PREFIX });
  for (const name of ["handles", "requests", "resources"]) registry.removeSingleMetric(`${PREFIX}nodejs_active_${name}_total`);
}

export function createMetrics(opts: { queueDepth: () => number; maxBatch: number; defaultMetrics?: boolean }): ServeMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics) processMetrics(registry);
  const sizeBuckets: number[] = [];
  for (let b = 1; b < opts.maxBatch; b *= 2) sizeBuckets.push(b);
  sizeBuckets.push(opts.maxBatch);
  new Gauge({ name: `${PREFIX}build_info`, help: "Always 1; the lenpred version serving.", labelNames: ["version"], registers: [registry] }).set({ version: packageVersion() }, 1);
  const modelInfo = new Gauge({
    name: `${PREFIX}model_info`, help: "Always 1 once the model is loaded; its name, kind, number of buckets and tokenizer.",
    labelNames: ["model", "kind", "buckets", "tokenizer"], registers: [registry],
  });
  let model: string | undefined;
  let expected: Histogram<"model"> | undefined;
  let reserved: Histogram<"model"> | undefined;
  let online = false;
  return {
    observeRequests: new Counter({
      name: `${PREFIX}observe_requests_total`, help: "POST /v1/observe requests by result (accepted, invalid, unauthorized, overloaded).",
      labelNames: ["result"], registers: [registry],
    }),
    registerOnline(svc) {
      if (online) return;
      online = true;
      registerOnlineMetrics(registry, svc);
    },
    registry,
    requests: new Counter({
      name: "lenpred_http_requests_total", help: "HTTP requests by method, route template and status code.",
      labelNames: ["method", "route", "status"], registers: [registry],
    }),
    latency: new Histogram({
      name: "lenpred_http_request_duration_seconds", help: "HTTP request latency (including queueing) by route template.",
      labelNames: ["route"], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry],
    }),
    prompts: new Counter({ name: "lenpred_prompts_total", help: "Prompts predicted.", registers: [registry] }),
    batchSize: new Histogram({
      name: "lenpred_batch_size", help: "Prompts per predictor call (micro-batch size).", buckets: sizeBuckets, registers: [registry],
    }),
    batchSeconds: new Histogram({
      name: "lenpred_batch_duration_seconds", help: "Duration of one predictor call.",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry],
    }),
    batchFailures: new Counter({ name: "lenpred_batch_failures_total", help: "Predictor calls that threw.", registers: [registry] }),
    rejected: new Counter({
      name: "lenpred_rejected_total", help: "Predict requests refused with 503 (queue_full, queue_timeout, loading, shutting_down).",
      labelNames: ["reason"], registers: [registry],
    }),
    queueDepth: new Gauge({
      name: "lenpred_queue_depth", help: "Prompts waiting for a micro-batch.", registers: [registry],
      collect() {
        this.set(opts.queueDepth());
      },
    }),
    registerModel(info) {
      if (model !== undefined) return;
      model = info.model;
      modelInfo.set({ model: info.model, kind: info.kind, buckets: String(info.buckets.edges.length), tokenizer: info.tokenizer }, 1);
      // The model's own bucket edges: every reservation is one of them, so the histogram is exact.
      const edges = [...new Set(info.buckets.edges.filter((e) => Number.isFinite(e)))].sort((a, b) => a - b);
      expected = new Histogram({
        name: `${PREFIX}predicted_tokens`, help: "Predicted output length (expectedTokens) per prediction, by model; buckets are the model's bucket edges.",
        labelNames: ["model"], buckets: edges, registers: [registry],
      });
      reserved = new Histogram({
        name: `${PREFIX}reserved_tokens`, help: "Tokens to reserve (upperBound, after any quantile) per prediction, by model.",
        labelNames: ["model"], buckets: edges, registers: [registry],
      });
    },
    observePredictions(preds) {
      if (model === undefined) return;
      for (const p of preds) {
        expected!.observe({ model }, p.expectedTokens);
        reserved!.observe({ model }, p.upperBound);
      }
    },
  };
}

/**
 * Gauges (and counters) of online learning, per target model, computed from one `stats()` call per scrape.
 * Cardinality is bounded by the learner's target cap (`--max-models`).
 */
function registerOnlineMetrics(registry: Registry, svc: OnlineService): void {
  let cached: { at: number; stats: ServiceStats } | undefined;
  // Every metric's collect() runs on the same scrape: compute the stats (Kendall τ is O(n log n)) once.
  const stats = (): ServiceStats => {
    const now = Date.now();
    if (!cached || now - cached.at > 50) cached = { at: now, stats: svc.stats() };
    return cached.stats;
  };
  const perModel = (name: string, help: string, pick: (t: ServiceStats["targets"][number]) => number | undefined) =>
    new Gauge({
      name: `${PREFIX}${name}`, help, labelNames: ["model"], registers: [registry],
      collect() {
        this.reset();
        for (const t of stats().targets) {
          const v = pick(t);
          if (v !== undefined && Number.isFinite(v)) this.set({ model: t.model }, v);
        }
      },
    });
  const total = <L extends string>(name: string, help: string, labelNames: L[], fill: (c: Counter<L>, s: ServiceStats) => void) =>
    new Counter<L>({
      name: `${PREFIX}${name}`, help, labelNames, registers: [registry],
      collect() {
        // Totals kept by the service (restored from the state dir on restart): set, not incremented here.
        this.reset();
        fill(this, stats());
      },
    });
  total("observations_total", "Observations learned per target model (resumed from the state dir after a restart).", ["model"], (c, s) => {
    for (const t of s.targets) c.inc({ model: t.model }, t.observations);
  });
  total("observations_accepted_total", "Observations acknowledged by POST /v1/observe (durable with --state-dir) since start.", [], (c, s) => c.inc(s.accepted));
  total("observations_refused_total", "Observations refused because they would add a target beyond --max-models.", [], (c, s) => c.inc(s.refused));
  total("retrains_total", "Background retrains of a DistilBERT member run, by outcome.", ["result"], (c, s) => {
    c.inc({ result: "accepted" }, s.retrainsAccepted);
    c.inc({ result: "rejected" }, s.retrains - s.retrainsAccepted);
  });
  total("retrain_paused_seconds_total", "Time retrain children spent stopped because predictions were in flight (a retrain under sustained load waits).", [], (c, s) => {
    if (s.retrainYield) c.inc(s.retrainYield.pausedMs / 1000);
  });
  new Gauge({
    name: `${PREFIX}observations_backlog`, help: "Observations accepted but not learned yet.", registers: [registry],
    collect() {
      this.set(svc.learner.pending);
    },
  });
  perModel("online_window_observations", "Observations in the sliding window the online quality gauges are computed over.", (t) => t.window);
  perModel("online_mae_tokens", "Mean absolute error of expectedTokens over the sliding window (predicted before each observation was learned).", (t) => t.mae);
  perModel("online_reserve_coverage_ratio", "Fraction of the window's outputs that fit in the reserveTokens predicted for them.", (t) => t.coverage);
  perModel("online_kendall_tau", "Kendall tau-b between expectedTokens and the observed lengths over the window.", (t) => t.kendallTau);
  perModel("online_base_mae_tokens", "MAE of the base model alone over the same window (what learning buys).", (t) => t.baseMae);
  perModel("online_base_reserve_coverage_ratio", "Coverage of the base model's own reservation over the same window.", (t) => t.baseCoverage);
  perModel("online_drift", "1 when the live MAE exceeds the base model's validation MAE by the drift margin.", (t) => (t.drift ? 1 : 0));
  perModel("online_scale", "Learned multiplicative correction of the base model's lengths.", (t) => t.scale);
  perModel("online_last_retrain_accepted", "1 if the target's last retrain was swapped in, 0 if it was rejected.", (t) => {
    const r = stats().lastRetrain.find((x) => x.model === t.model);
    return r ? (r.accepted ? 1 : 0) : undefined;
  });
  perModel("online_last_retrain_candidate_mae_tokens", "Held-out MAE of the target's last retrain candidate.", (t) => stats().lastRetrain.find((x) => x.model === t.model)?.candidateMae);
  perModel("online_last_retrain_current_mae_tokens", "Held-out MAE of the member in use when the target was last retrained.", (t) => stats().lastRetrain.find((x) => x.model === t.model)?.currentMae);
}
