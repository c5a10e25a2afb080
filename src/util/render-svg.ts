/** Render a vega-lite spec to SVG headless (vega's "none" renderer: no canvas, no browser). */
export async function renderVegaLiteSvg(vlSpec: object): Promise<string> {
  const vega = await import("vega");
  const { compile } = await import("vega-lite");
  const spec = compile(vlSpec as Parameters<typeof compile>[0]).spec;
  const view = new vega.View(vega.parse(spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
