/**
 * Prometheus metrics of one proxy instance (own Registry, as in serve, so several proxies in one process —
 * tests, the bench — never share counters). `model` labels are the request's `model` field truncated to
 * 64 characters, and at most `maxModels` distinct values are kept ("other" beyond) so clients cannot
 * explode label cardinality.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const TOKENS = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192];

export interface ProxyMetrics {
  registry: Registry;
  requests: Counter<"route" | "status">;
  queueWait: Histogram;
  upstreamLatency: Histogram<"route">;
  ttft: Histogram;
  observations: Counter<"model">;
  predicted: Histogram<"model">;
  actual: Histogram<"model">;
  absError: Histogram<"model">;
  extensions: Counter;
  predictionFailures: Counter;
  rejected: Counter<"reason">;
  upstreamErrors: Counter<"kind">;
  cancelled: Counter<"stage">;
  modelLabel(model: string | undefined): string;
}

export function createProxyMetrics(opts: {
  queueLength: () => number;
  inFlight: () => number;
  reservedTokens: () => number;
  defaultMetrics?: boolean;
  maxModels?: number;
}): ProxyMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics) {
    // As in serve: drop prom-client's nodejs_active_*_total gauges (named like counters, promtool rejects
    // them); the same numbers remain in nodejs_active_* by type.
    collectDefaultMetrics({ register: registry, prefix: "lenpred_" });
    for (const name of ["handles", "requests", "resources"]) registry.removeSingleMetric(`lenpred_nodejs_active_${name}_total`);
  }
  const seen = new Set<string>();
  const maxModels = opts.maxModels ?? 32;
  const r = [registry];
  new Gauge({ name: "lenpred_proxy_queue_length", help: "Requests waiting in the proxy for admission.", registers: r, collect() { this.set(opts.queueLength()); } });
  new Gauge({ name: "lenpred_proxy_in_flight", help: "Requests admitted and in flight upstream.", registers: r, collect() { this.set(opts.inFlight()); } });
  new Gauge({ name: "lenpred_proxy_reserved_kv_tokens", help: "Sum of the KV-token reservations (prompt + reserve) of in-flight requests.", registers: r, collect() { this.set(opts.reservedTokens()); } });
  return {
    registry,
    requests: new Counter({ name: "lenpred_proxy_requests_total", help: "Proxied requests by route and status.", labelNames: ["route", "status"], registers: r }),
    queueWait: new Histogram({ name: "lenpred_proxy_queue_wait_seconds", help: "Time from arrival to admission upstream.", buckets: SECONDS, registers: r }),
    upstreamLatency: new Histogram({ name: "lenpred_proxy_upstream_seconds", help: "Upstream time, admission to end of response.", labelNames: ["route"], buckets: SECONDS, registers: r }),
    ttft: new Histogram({ name: "lenpred_proxy_ttft_seconds", help: "Streams: admission to the first content token.", buckets: SECONDS, registers: r }),
    observations: new Counter({ name: "lenpred_observations_total", help: "True output lengths observed (fed back to the predictor) by model.", labelNames: ["model"], registers: r }),
    predicted: new Histogram({ name: "lenpred_proxy_predicted_tokens", help: "Predicted output tokens (expectedTokens) of observed requests.", labelNames: ["model"], buckets: TOKENS, registers: r }),
    actual: new Histogram({ name: "lenpred_proxy_actual_tokens", help: "Actual output tokens of observed requests.", labelNames: ["model"], buckets: TOKENS, registers: r }),
    absError: new Histogram({ name: "lenpred_proxy_prediction_abs_error_tokens", help: "|predicted - actual| output tokens.", labelNames: ["model"], buckets: TOKENS, registers: r }),
    extensions: new Counter({ name: "lenpred_proxy_reservation_extensions_total", help: "Reservations extended because a request outgrew its reserveTokens.", registers: r }),
    predictionFailures: new Counter({ name: "lenpred_proxy_prediction_failures_total", help: "Predictions that threw (the request was scheduled as a long one).", registers: r }),
    rejected: new Counter({ name: "lenpred_proxy_rejected_total", help: "Requests refused with 503 (queue_full, shutting_down, loading).", labelNames: ["reason"], registers: r }),
    upstreamErrors: new Counter({ name: "lenpred_proxy_upstream_errors_total", help: "Upstream failures: connect (502), timeout (504), status (upstream answered >= 400), aborted mid-response.", labelNames: ["kind"], registers: r }),
    cancelled: new Counter({ name: "lenpred_proxy_client_cancelled_total", help: "Client disconnects, while queued or while in flight upstream.", labelNames: ["stage"], registers: r }),
    modelLabel(model) {
      const m = (model ?? "").slice(0, 64) || "unknown";
      if (seen.has(m)) return m;
      if (seen.size >= maxModels) return "other";
      seen.add(m);
      return m;
    },
  };
}
