/** `lenpred replay`: prequential evaluation of online learning on a trace of completed requests. */
import type { Command } from "commander";
import { numberOption } from "../util/number-option.js";

export function register(program: Command): void {
  program
    .command("replay")
    .summary("prequential evaluation of online learning: predict each trace record before learning it")
    .description("replay a trace of completed requests through online learning, in order: each record is predicted "
      + "before it is observed; writes per-record predictions (with reserveTokens), a summary and a learning curve")
    .requiredOption("--trace <jsonl>", "records {prompt | messages, output_tokens | output, model?} (the multi-model JSONL works as is)")
    .option("--model <dir>", "base model directory (default: the bundled models/alpaca-s3)")
    .requiredOption("--out <jsonl>", "per-record predictions (PredictionRecord + reserveTokens, output_tokens, static)")
    .option("--quantile <q>", "reservation level of reserveTokens", numberOption("--quantile", { min: 0 }), 0.9)
    .option("--target <name>", "replay only the records of this model (records without a model are given this name)")
    .option("--tokenizer <spec>", "tokenizer counting output text (and prompt_tokens for --prepared-out)", "llama")
    .option("--limit <n>", "replay only the first n (matching) records", numberOption("--limit", { int: true, min: 1 }))
    .option("--window <n>", "records per point of the learning curve", numberOption("--window", { int: true, min: 1 }), 100)
    .option("--summary <json>", "write the summary JSON here")
    .option("--plot <svg>", "write the learning-curve SVG here")
    .option("--prepared-out <dir>", "also write the trace as a prepared split (<dir>/test.jsonl + scheme.json) for `lenpred simulate --data <dir> --predictions <out>`")
    .option("--threads <n>", "onnxruntime intra-op threads", numberOption("--threads", { int: true, min: 1 }), 2)
    .addHelpText("after", `
Examples:
  lenpred replay --trace ../shared/data/multi-model/flask.jsonl --target gpt4 --out gpt4.jsonl --plot gpt4.svg --prepared-out gpt4-trace
  lenpred simulate --data gpt4-trace --predictions gpt4.jsonl --policies s3,oracle,paged
See docs/online.md.`)
    .action(async (o: { trace: string; model?: string; out: string; quantile: number; target?: string; tokenizer: string; limit?: number; window: number; summary?: string; plot?: string; preparedOut?: string; threads: number }) => {
      const { LenpredError } = await import("../util/errors.js");
      if (!(o.quantile > 0 && o.quantile < 1)) throw new LenpredError(`--quantile must be in (0, 1), got ${o.quantile}`);
      const { join } = await import("node:path");
      const { repoRoot } = await import("../util/paths.js");
      const { loadTokenizer } = await import("../tokenizers/index.js");
      const { OnlineLearner } = await import("../online/learner.js");
      const { readTrace, replay, summarize, learningCurveSvg } = await import("../online/replay.js");
      const { writeFileAtomic, writeJsonAtomic } = await import("../util/atomic.js");
      const { checkModelName } = await import("../online/observation.js");
      if (o.target !== undefined) checkModelName(o.target, { field: "--target" });
      const modelDir = o.model ?? join(repoRoot, "models", "alpaca-s3");
      const trace = await readTrace(o.trace, { target: o.target, limit: o.limit, tokenizer: () => loadTokenizer(o.tokenizer), countPrompt: o.preparedOut !== undefined });
      const learner = await OnlineLearner.load(modelDir, { quantile: o.quantile, threads: o.threads });
      try {
        const t0 = Date.now();
        const recs = await replay(learner, trace, { quantile: o.quantile, onProgress: (d) => { if (process.stderr.isTTY) process.stderr.write(`\rreplayed ${d}/${trace.length}`); } });
        if (process.stderr.isTTY) process.stderr.write("\n");
        const { writePredictionsFile } = await import("../data/predictions-file.js");
        await writePredictionsFile(o.out, recs);
        const s = summarize(recs, o.quantile, o.window);
        if (o.summary) await writeJsonAtomic(o.summary, s);
        if (o.plot) await writeFileAtomic(o.plot, await learningCurveSvg(s, o.target ?? o.trace));
        if (o.preparedOut) {
          const { bucketOf } = await import("../data/buckets.js");
          const { writePreparedSplit } = await import("../data/prepared-dir.js");
          await writePreparedSplit(o.preparedOut, "test", { buckets: learner.buckets, tokenizer: o.tokenizer, specialTokens: false, label: "replay:output_tokens", template: "" },
            trace.map((r, i) => ({ id: r.id ?? i, prompt: r.prompt, prompt_tokens: r.prompt_tokens ?? 0, output_tokens: r.output_tokens, output_length_bucket: bucketOf(learner.buckets, r.output_tokens) })));
        }
        const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
        const line = (name: string, a: import("../online/replay.js").Scores) => `${name.padEnd(8)} MAE ${a.mae.toFixed(1).padStart(7)}  coverage(reserveTokens) ${pct(a.coverage).padStart(7)}  coverage(upperBound) ${pct(a.upperBoundCoverage).padStart(7)}  τ ${a.kendallTau.toFixed(3)}`;
        console.log(`replayed ${recs.length} records in ${((Date.now() - t0) / 1000).toFixed(1)} s → ${o.out}`);
        console.log(`second half (${s.online.secondHalf.n} records), q = ${o.quantile}:`);
        console.log(line("online", s.online.secondHalf));
        console.log(line("static", s.static.secondHalf));
      } finally {
        await learner.dispose();
      }
    });
}
