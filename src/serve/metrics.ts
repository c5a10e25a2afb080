/**
 * Prometheus metrics of one server instance. Each server gets its own Registry (not prom-client's
 * global one) so that several servers in one process — tests, the bench — never share counters.
 * Route labels are route *templates* ("unmatched" for 404s), so a fuzzer cannot explode label cardinality.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

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
}

export function createMetrics(opts: { queueDepth: () => number; maxBatch: number; defaultMetrics?: boolean }): ServeMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: "lenpred_" });
  const sizeBuckets: number[] = [];
  for (let b = 1; b < opts.maxBatch; b *= 2) sizeBuckets.push(b);
  sizeBuckets.push(opts.maxBatch);
  return {
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
      name: "lenpred_rejected_total", help: "Predict requests refused with 503 (queue_full, loading, shutting_down).",
      labelNames: ["reason"], registers: [registry],
    }),
    queueDepth: new Gauge({
      name: "lenpred_queue_depth", help: "Prompts waiting for a micro-batch.", registers: [registry],
      collect() {
        this.set(opts.queueDepth());
      },
    }),
  };
}
