/**
 * Prequential replay (`lenpred replay`): feed a trace of completed requests through an `OnlineLearner` in
 * order — each record is predicted *before* it is observed — and score the predictions as they would have been
 * served. Also scores the static base model on the same records, so the summary shows what learning buys.
 *
 * Trace records: the multi-model JSONL `{model, prompt, output, messages?}` (output text counted with a
 * tokenizer) or observation records `{prompt | messages, output_tokens, model?}`.
 */
import { kendallTauB } from "../metrics/kendall.js";
import type { Tokenizer } from "../tokenizers/types.js";
import { LenpredError, type ErrorPlace } from "../util/errors.js";
import { asObject, describe } from "../util/fields.js";
import { readJsonl } from "../util/jsonl.js";
import { renderVegaLiteSvg } from "../util/render-svg.js";
import type { OnlineLearner, OnlinePrediction } from "./learner.js";
import type { OnlineService } from "./service.js";
import { checkModelName, validateObservation, type ValidObservation } from "./observation.js";

export interface TraceRecord extends ValidObservation {
  /** Record index in the trace file. */
  line: number;
  id?: string | number;
}

export interface ReplayRecord {
  index: number;
  id?: string | number;
  model: string;
  bucket: number;
  upperBound: number;
  expectedTokens: number;
  probabilities?: number[];
  reserveTokens: number;
  output_tokens: number;
  prompt_tokens?: number;
  /** The static base model's prediction of the same record. */
  static: { expectedTokens: number; upperBound: number; reserveTokens: number };
}

/** Read a trace, counting output text with `tokenizer` (needed only for records with `output` text). */
export async function readTrace(file: string, o: { target?: string; tokenizer?: () => Promise<Tokenizer>; limit?: number; countPrompt?: boolean } = {}): Promise<TraceRecord[]> {
  const out: TraceRecord[] = [];
  let tok: Tokenizer | undefined;
  for await (const r of readJsonl(file)) {
    if (o.limit !== undefined && out.length >= o.limit) break;
    const place: ErrorPlace = { file, record: r.index };
    const rec = asObject(r.value, place);
    const model = rec.model === undefined || rec.model === null ? undefined : checkModelName(rec.model, { ...place, field: "model" });
    if (o.target !== undefined && model !== undefined && model !== o.target) continue;
    let output_tokens = rec.output_tokens;
    if (output_tokens === undefined || output_tokens === null) {
      if (typeof rec.output !== "string") throw new LenpredError(`a trace record needs 'output_tokens' or 'output' text, got ${describe(rec.output)}`, { ...place, field: "output" });
      tok ??= await (o.tokenizer ?? (() => { throw new LenpredError("output text needs a tokenizer"); }))();
      output_tokens = tok.count(rec.output, { addSpecialTokens: false });
    }
    // The multi-model files give both `prompt` and `messages` on later turns; the messages are authoritative.
    const body: Record<string, unknown> = { output_tokens, model: o.target ?? model };
    if (rec.messages !== undefined && rec.messages !== null) body.messages = rec.messages;
    else body.prompt = rec.prompt;
    if (rec.prompt_tokens !== undefined) body.prompt_tokens = rec.prompt_tokens;
    const v = validateObservation(body, "", place);
    if (v.prompt_tokens === undefined && o.countPrompt) {
      tok ??= await o.tokenizer!();
      v.prompt_tokens = tok.count(v.prompt, { addSpecialTokens: false });
    }
    const id = typeof rec.id === "string" || typeof rec.id === "number" ? rec.id : typeof rec.question_id === "number" ? `${rec.question_id}${rec.turn ? `:${String(rec.turn)}` : ""}` : undefined;
    out.push({ ...v, line: r.index, ...(id !== undefined ? { id } : {}) });
  }
  if (out.length === 0) throw new LenpredError(o.target ? `no records for target '${o.target}'` : "the trace has no records", { file });
  return out;
}

/** Prequential pass: predict each record, then learn it. `onRecord` sees each record's prediction in order. */
export async function replay(learner: OnlineLearner, trace: TraceRecord[], o: {
  quantile?: number; chunk?: number; onProgress?: (done: number) => void;
  /** Observe through this service (durable, with background retraining); each retrain it starts is waited for. */
  service?: OnlineService;
} = {}): Promise<ReplayRecord[]> {
  const chunk = o.chunk ?? 256;
  const out: ReplayRecord[] = [];
  for (let s = 0; s < trace.length; s += chunk) {
    const part = trace.slice(s, s + chunk);
    // Base predictions do not depend on what is learned: compute the chunk's in one batch.
    await learner.warm(part.map((r) => r.prompt));
    const statics = await learner.predictStatic(part.map((r) => r.prompt), { quantile: o.quantile });
    for (const [j, r] of part.entries()) {
      const [p] = await learner.predictBatch([r.prompt], { model: r.model, quantile: o.quantile });
      const st = statics[j]!;
      out.push(record(s + j, r, p!, st));
      const obs = [r.prompt_tokens === undefined ? { prompt: r.prompt, output_tokens: r.output_tokens, model: r.model } : { prompt: r.prompt, output_tokens: r.output_tokens, model: r.model, prompt_tokens: r.prompt_tokens }];
      if (o.service) {
        await o.service.observe(obs);
        await o.service.retrainIdle();
      } else await learner.observe(obs);
    }
    o.onProgress?.(out.length);
  }
  return out;
}

function record(index: number, r: TraceRecord, p: OnlinePrediction, st: OnlinePrediction): ReplayRecord {
  const rec: ReplayRecord = {
    index, ...(r.id !== undefined ? { id: r.id } : {}), model: r.model,
    bucket: p.bucket, upperBound: p.upperBound, expectedTokens: round2(p.expectedTokens),
    ...(p.probabilities ? { probabilities: p.probabilities.map((x) => Math.round(x * 1e4) / 1e4) } : {}),
    reserveTokens: p.reserveTokens, output_tokens: r.output_tokens,
    ...(r.prompt_tokens !== undefined ? { prompt_tokens: r.prompt_tokens } : {}),
    static: { expectedTokens: round2(st.expectedTokens), upperBound: st.upperBound, reserveTokens: st.reserveTokens },
  };
  return rec;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

export interface Scores { n: number; mae: number; coverage: number; kendallTau: number; upperBoundCoverage: number }
export interface ReplaySummary {
  records: number;
  quantile: number;
  online: { all: Scores; secondHalf: Scores };
  static: { all: Scores; secondHalf: Scores };
  /** Per target model (second half). */
  targets: Record<string, { n: number; online: Scores; static: Scores }>;
  /** Learning curve: scores over consecutive windows. */
  curve: { end: number; online: Scores; static: Scores }[];
}

function score(recs: ReplayRecord[], which: "online" | "static"): Scores {
  const n = recs.length;
  const e = recs.map((r) => (which === "online" ? r.expectedTokens : r.static.expectedTokens));
  const res = recs.map((r) => (which === "online" ? r.reserveTokens : r.static.reserveTokens));
  const ub = recs.map((r) => (which === "online" ? r.upperBound : r.static.upperBound));
  const y = recs.map((r) => r.output_tokens);
  let ae = 0, cov = 0, ubc = 0;
  for (let i = 0; i < n; i++) {
    ae += Math.abs(e[i]! - y[i]!);
    if (y[i]! <= res[i]!) cov++;
    if (y[i]! <= ub[i]!) ubc++;
  }
  return { n, mae: n ? ae / n : NaN, coverage: n ? cov / n : NaN, kendallTau: kendallTauB(e, y), upperBoundCoverage: n ? ubc / n : NaN };
}

export function summarize(recs: ReplayRecord[], quantile: number, window = 100): ReplaySummary {
  const half = recs.slice(Math.floor(recs.length / 2));
  const targets: ReplaySummary["targets"] = {};
  const byModel = new Map<string, ReplayRecord[]>();
  for (const r of recs) (byModel.get(r.model) ?? byModel.set(r.model, []).get(r.model)!).push(r);
  for (const [m, rs] of byModel) {
    const h = rs.slice(Math.floor(rs.length / 2));
    targets[m] = { n: rs.length, online: score(h, "online"), static: score(h, "static") };
  }
  const curve: ReplaySummary["curve"] = [];
  for (let s = 0; s < recs.length; s += window) {
    const w = recs.slice(s, s + window);
    curve.push({ end: s + w.length, online: score(w, "online"), static: score(w, "static") });
  }
  return {
    records: recs.length, quantile,
    online: { all: score(recs, "online"), secondHalf: score(half, "online") },
    static: { all: score(recs, "static"), secondHalf: score(half, "static") },
    targets, curve,
  };
}

/** Learning curve: windowed MAE and reserveTokens coverage, online vs static. */
export function learningCurveSvg(s: ReplaySummary, title: string): Promise<string> {
  const rows = s.curve.flatMap((c) => [
    { end: c.end, who: "online", mae: c.online.mae, coverage: c.online.coverage },
    { end: c.end, who: "static", mae: c.static.mae, coverage: c.static.coverage },
  ]);
  const x = { field: "end", type: "quantitative", title: "records replayed" };
  const color = { field: "who", type: "nominal", title: null };
  return renderVegaLiteSvg({
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: `Prequential learning curve — ${title}`,
    data: { values: rows },
    vconcat: [
      { width: 480, height: 180, mark: { type: "line", point: true }, encoding: { x, y: { field: "mae", type: "quantitative", title: "MAE (tokens), per window" }, color } },
      { width: 480, height: 180,
        layer: [
          { mark: { type: "line", point: true }, encoding: { x, y: { field: "coverage", type: "quantitative", title: `coverage of reserveTokens (q = ${s.quantile})`, scale: { domain: [0, 1] } }, color } },
          { data: { values: [{ q: s.quantile }] }, mark: { type: "rule", strokeDash: [4, 4] }, encoding: { y: { field: "q", type: "quantitative" } } },
        ] },
    ],
  });
}
