/**
 * Confusion-matrix heat map as SVG, rendered headless by vega-lite → vega (renderer "none", no canvas or
 * browser needed). Cells are coloured by row-normalised recall (so the rare long buckets stay visible next
 * to a 90 % bucket 0) and labelled with raw counts.
 */
import type { BucketScheme } from "../data/buckets.js";
import { renderVegaLiteSvg } from "../util/render-svg.js";

export async function confusionMatrixSvg(confusion: number[][], scheme: BucketScheme, title = "Confusion matrix"): Promise<string> {
  const last = scheme.edges.length - 1;
  // the last bucket also holds everything longer than its edge
  const label = (i: number) => (i === last && i > 0 ? `${i} (≥${scheme.edges[i - 1]})` : `${i} (<${scheme.edges[i]})`);
  const values: { actual: string; predicted: string; count: number; share: number; ai: number; pi: number }[] = [];
  confusion.forEach((row, a) => {
    const total = row.reduce((s, v) => s + v, 0);
    row.forEach((count, p) => values.push({ actual: label(a), predicted: label(p), count, share: total ? count / total : 0, ai: a, pi: p }));
  });
  const order = confusion.map((_, i) => label(i));
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    data: { values },
    width: 36 * confusion.length,
    height: 36 * confusion.length,
    encoding: {
      x: { field: "predicted", type: "ordinal", sort: order, title: "predicted bucket" },
      y: { field: "actual", type: "ordinal", sort: order, title: "actual bucket" },
    },
    layer: [
      {
        mark: "rect",
        encoding: {
          color: { field: "share", type: "quantitative", title: "share of row", scale: { scheme: "blues", domain: [0, 1] } },
        },
      },
      {
        mark: { type: "text", fontSize: 9 },
        encoding: {
          text: { field: "count", type: "quantitative" },
          color: { condition: { test: "datum.share > 0.5", value: "white" }, value: "black" },
        },
      },
    ],
  };
  return renderVegaLiteSvg(spec);
}
