/**
 * Plots of a simulation as SVG, rendered headless with vega-lite → vega (`view.toSVG()`, no canvas or
 * browser needed): throughput by policy, reserved/used KV memory over time, latency CDF.
 */
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic.js";
import type { PolicyResult } from "./scheduler-loop.js";
import { renderVegaLiteSvg } from "../util/render-svg.js";

type Row = Record<string, string | number>;

/** Downsample a timeline to at most `points` rows by averaging equal-time windows. */
export function downsampleTimeline(r: PolicyResult, points = 300): Row[] {
  const tl = r.timeline;
  if (!tl || tl.t.length === 0) return [];
  const end = tl.t[tl.t.length - 1]!;
  const rows: Row[] = [];
  let k = 0;
  for (let w = 0; w < points && k < tl.t.length; w++) {
    const hi = (end * (w + 1)) / points;
    let su = 0, sr = 0, c = 0;
    while (k < tl.t.length && tl.t[k]! <= hi) { su += tl.used[k]!; sr += tl.reserved[k]!; c++; k++; }
    if (c === 0) continue;
    rows.push({ policy: r.name, t: hi, kind: "reserved", fraction: sr / c });
    rows.push({ policy: r.name, t: hi, kind: "used", fraction: su / c });
  }
  return rows;
}

/** Empirical CDF of latency with at most `points` points per policy. */
export function latencyCdf(r: PolicyResult, points = 200): Row[] {
  const s = r.latency.slice().sort();
  const rows: Row[] = [];
  const n = s.length;
  for (let k = 1; k <= points; k++) {
    const idx = Math.min(n - 1, Math.ceil((k / points) * n) - 1);
    rows.push({ policy: r.name, latency: Math.max(s[idx]!, 1e-6), cdf: (idx + 1) / n });
  }
  return rows;
}

export function plotSpecs(results: PolicyResult[], title: string): Record<string, object> {
  const order = results.map((r) => r.name);
  return {
    "throughput.svg": {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      title: `Throughput by policy — ${title}`,
      width: 420, height: 260,
      data: { values: results.map((r) => ({ policy: r.name, tps: r.metrics.throughput_tokens_per_s })) },
      layer: [
        { mark: "bar", encoding: {
          x: { field: "policy", type: "nominal", sort: order, title: null },
          y: { field: "tps", type: "quantitative", title: "output tokens / s" },
          color: { field: "policy", type: "nominal", sort: order, legend: null } } },
        { mark: { type: "text", dy: -6 }, encoding: {
          x: { field: "policy", type: "nominal", sort: order },
          y: { field: "tps", type: "quantitative" },
          text: { field: "tps", type: "quantitative", format: ",.0f" } } },
      ],
    },
    "memory.svg": {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      title: `KV cache over time (fraction of capacity) — ${title}`,
      data: { values: results.flatMap((r) => downsampleTimeline(r)) },
      facet: { row: { field: "policy", type: "nominal", sort: order, title: null } },
      resolve: { scale: { x: "independent" } },
      spec: {
        width: 520, height: 70,
        mark: { type: "line", strokeWidth: 1.2 },
        encoding: {
          x: { field: "t", type: "quantitative", title: "time (s)" },
          y: { field: "fraction", type: "quantitative", scale: { domain: [0, 1] }, title: null },
          color: { field: "kind", type: "nominal", title: "KV" },
        },
      },
    },
    "latency-cdf.svg": {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      title: `Request latency CDF — ${title}`,
      width: 460, height: 280,
      data: { values: results.flatMap((r) => latencyCdf(r)) },
      mark: { type: "line", interpolate: "step-after" },
      encoding: {
        x: { field: "latency", type: "quantitative", scale: { type: "log", nice: false }, title: "latency (s, log)" },
        y: { field: "cdf", type: "quantitative", title: "fraction of requests" },
        color: { field: "policy", type: "nominal", sort: order },
      },
    },
  };
}

/** Write throughput.svg, memory.svg and latency-cdf.svg into `dir`; returns the written paths. */
export async function writePlots(dir: string, results: PolicyResult[], title: string): Promise<string[]> {
  const out: string[] = [];
  for (const [file, spec] of Object.entries(plotSpecs(results, title))) {
    const path = join(dir, file);
    await writeFileAtomic(path, await renderVegaLiteSvg(spec));
    out.push(path);
  }
  return out;
}
