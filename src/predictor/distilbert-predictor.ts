/**
 * The "distilbert" model kind at inference: `model.onnx` (int64 input_ids/attention_mask → float logits
 * [batch, outputs]) on onnxruntime-node plus the model directory's own `tokenizer.json`. Batches are grouped
 * by token length and padded only to their longest prompt; outputs are decoded by the head recorded in
 * lenpred.json (see model/decode.ts).
 */
import { HEAD_KINDS } from "../model/config.js";
import { join, relative } from "node:path";
import type { BucketScheme } from "../data/buckets.js";
import type { Session } from "../engine/session.js";
import type { Tokenizer } from "../tokenizers/types.js";
import { padBatch, sortedBatches } from "../model/token-batch.js";
import { LenpredError } from "../util/errors.js";
import { decodeOutputs, type DecodeOptions, type HeadSpec } from "../model/decode.js";
import { CONFIG_FILE, LEGACY_ONNX_INT8_FILE, MAX_JSON_BYTES, metaFileOf, modelFile, ONNX_ATTENTION_MASK, ONNX_FILE, ONNX_INT8_FILE, ONNX_INPUT_IDS, ONNX_OUTPUT, onnxFileOf, onnxInt8FileOf, readModelMeta, TOKENIZER_FILE, type ModelMeta } from "../model-dir/index.js";
import type { Prediction, Predictor, PredictorLoadOptions } from "../model/prediction.js";

export interface DistilBertLoadOptions extends PredictorLoadOptions {
  /**
   * Run the int8 export (onnx/model_quantized.onnx, or model.int8.onnx in older directories) instead of
   * onnx/model.onnx: 2–3× faster matmuls, logits within ~2% of their spread (docs/model.md). A LenpredError
   * when the directory has none.
   */
  int8?: boolean;
}

function headSpecFromMeta(meta: ModelMeta, file: string): HeadSpec {
  const head = (meta.head ?? "classification") as HeadSpec["head"];
  if (!(HEAD_KINDS as readonly string[]).includes(head)) throw new LenpredError(`unknown head '${String(meta.head)}'`, { file, field: "head" });
  const spec: HeadSpec = { head };
  if (head === "quantile") {
    const q = meta.quantiles;
    if (!Array.isArray(q) || q.length === 0 || !q.every((x) => typeof x === "number" && x > 0 && x < 1)) {
      throw new LenpredError("quantile head needs its levels (numbers in (0, 1))", { file, field: "quantiles" });
    }
    spec.quantiles = q as number[];
  }
  if (meta.residualStd !== undefined) {
    const r = meta.residualStd;
    if (typeof r !== "number" || !Number.isFinite(r) || r < 0) throw new LenpredError(`must be a non-negative number, got ${JSON.stringify(r)}`, { file, field: "residualStd" });
    spec.residualStd = r;
  }
  if (meta.bucketMeans !== undefined) {
    const m = meta.bucketMeans;
    if (!Array.isArray(m) || m.length !== meta.buckets.edges.length || !m.every((x) => typeof x === "number" && Number.isFinite(x) && x >= 0)) {
      throw new LenpredError(`expected ${meta.buckets.edges.length} non-negative numbers (one per bucket)`, { file, field: "bucketMeans" });
    }
    spec.bucketMeans = m as number[];
  }
  return spec;
}

/** Longest input the model was trained with; longer than its position table would crash onnxruntime later. */
const DEFAULT_MAX_SEQ_LEN = 512;

async function maxSeqLenOf(meta: ModelMeta, dir: string, metaFile: string): Promise<number> {
  const v = meta.maxSeqLen ?? DEFAULT_MAX_SEQ_LEN;
  if (!Number.isInteger(v) || (v as number) < 3) throw new LenpredError(`must be an integer >= 3 ([CLS] x [SEP]), got ${JSON.stringify(v)}`, { file: metaFile, field: "maxSeqLen" });
  // A trained directory has config.json: its position table bounds the sequence length.
  // lstat: anything at that name (a FIFO, a dangling link, a loop) goes through modelFile and is refused there.
  const { lstatSync } = await import("node:fs");
  if (!lstatSync(join(dir, CONFIG_FILE), { throwIfNoEntry: false })) return v as number;
  const { readJsonFile } = await import("../util/json-file.js");
  const configFile = modelFile(dir, CONFIG_FILE, { maxBytes: MAX_JSON_BYTES });
  const mpe = ((await readJsonFile(configFile)) as { max_position_embeddings?: unknown } | null)?.max_position_embeddings;
  if (!Number.isInteger(mpe) || (mpe as number) < 3) throw new LenpredError(`must be an integer >= 3, got ${JSON.stringify(mpe)}`, { file: configFile, field: "max_position_embeddings" });
  if ((v as number) > (mpe as number)) {
    if (meta.maxSeqLen === undefined) return mpe as number;
    throw new LenpredError(`${v} exceeds config.json's max_position_embeddings ${mpe}`, { file: metaFile, field: "maxSeqLen" });
  }
  return v as number;
}

function defaultOnnxFile(dir: string): string {
  const found = onnxFileOf(dir);
  return modelFile(dir, found ? relative(dir, found) : ONNX_FILE, { missing: "model directory has no onnx/model.onnx (nor model.onnx)" });
}

function int8File(dir: string, meta: ModelMeta): string {
  const found = onnxInt8FileOf(dir, meta);
  if (!found) throw new LenpredError(`has no int8 export (${ONNX_INT8_FILE}, nor ${LEGACY_ONNX_INT8_FILE}); write one with saveModelDir's onnxInt8`, { file: dir });
  return found;
}

export class DistilBertPredictor implements Predictor {
  readonly name = "distilbert";

  private constructor(
    readonly dir: string,
    readonly buckets: BucketScheme,
    readonly head: HeadSpec,
    readonly maxLength: number,
    private readonly tokenizer: Tokenizer,
    private readonly session: Session,
    private readonly opts: Required<Omit<DistilBertLoadOptions, "threads" | "int8">>,
  ) {}

  /** `meta`: lenpred.json when the caller has read it already (the kind registry), so it is read once per load. */
  static async load(dir: string, opts: DistilBertLoadOptions = {}, meta?: ModelMeta): Promise<DistilBertPredictor> {
    meta ??= await readModelMeta(dir);
    const metaFile = metaFileOf(dir);
    if (meta.kind !== "distilbert") throw new LenpredError(`kind '${meta.kind}' is not "distilbert"`, { file: metaFile, field: "kind" });
    const head = headSpecFromMeta(meta, metaFile);
    const maxLength = await maxSeqLenOf(meta, dir, metaFile);
    const { loadTokenizer } = await import("../tokenizers/index.js");
    const tokFile = modelFile(dir, TOKENIZER_FILE, { missing: "model directory has no tokenizer.json (the input tokenizer)" });
    const tokenizer = await loadTokenizer(tokFile);
    const onnx = opts.int8 ? int8File(dir, meta) : defaultOnnxFile(dir);
    const { Session } = await import("../engine/session.js");
    const session = await Session.create(onnx, { threads: opts.threads ?? 2 });
    for (const n of [ONNX_INPUT_IDS]) {
      if (!session.inputNames.includes(n)) throw new LenpredError(`model.onnx has no '${n}' input (inputs: ${session.inputNames.join(", ")})`, { file: onnx });
    }
    return new DistilBertPredictor(dir, meta.buckets, head, maxLength, tokenizer, session, {
      batchSize: opts.batchSize ?? 32, maxBatchTokens: opts.maxBatchTokens ?? 16384,
    });
  }

  /** Token ids the model sees for a prompt ([CLS] … [SEP], truncated to the trained maximum length). */
  encode(prompt: string): number[] {
    return this.tokenizer.encode(prompt, { addSpecialTokens: true, maxLength: this.maxLength });
  }

  /** Raw head outputs for already-encoded prompts (one ONNX run). */
  async outputs(seqs: number[][]): Promise<{ data: Float32Array; width: number }> {
    const { ort } = await import("../engine/session.js");
    const b = padBatch(seqs, this.tokenizer.special.pad ?? 0);
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
      [ONNX_INPUT_IDS]: new ort.Tensor("int64", b.inputIds, [b.batch, b.seqLen]),
    };
    if (this.session.inputNames.includes(ONNX_ATTENTION_MASK)) feeds[ONNX_ATTENTION_MASK] = new ort.Tensor("int64", b.attentionMask, [b.batch, b.seqLen]);
    const out = await this.session.run(feeds);
    const t = out[ONNX_OUTPUT] ?? out[this.session.outputNames[0]!]!;
    const data = t.data as Float32Array;
    return { data, width: data.length / b.batch };
  }

  async predict(prompt: string, opts: DecodeOptions = {}): Promise<Prediction> {
    return (await this.predictBatch([prompt], opts))[0]!;
  }

  async predictBatch(prompts: string[], opts: DecodeOptions = {}): Promise<Prediction[]> {
    if (!Array.isArray(prompts)) throw new LenpredError("predictBatch expects an array of prompts");
    prompts.forEach((p, i) => {
      if (typeof p !== "string") throw new LenpredError(`prompt ${i} is not a string`, { record: i, field: "prompt" });
    });
    const seqs = prompts.map((p) => this.encode(p));
    const result: Prediction[] = new Array(prompts.length);
    for (const group of this.groups(seqs)) {
      const { data, width } = await this.outputs(group.map((i) => seqs[i]!));
      group.forEach((i, r) => {
        result[i] = decodeOutputs(data.subarray(r * width, (r + 1) * width), this.head, this.buckets, opts);
      });
    }
    return result;
  }

  predictBatchAtQuantile(prompts: string[], opts: { quantile: number }): Promise<Prediction[]> {
    return this.predictBatch(prompts, opts);
  }

  /** Length-sorted groups of at most batchSize prompts and maxBatchTokens padded tokens. */
  private groups(seqs: number[][]): number[][] {
    const out: number[][] = [];
    for (const g of sortedBatches(seqs.map((s) => s.length), this.opts.batchSize)) {
      // Sorted longest first, so the first element sets the padded width of a chunk.
      let cur: number[] = [];
      for (const i of g) {
        const width = cur.length ? seqs[cur[0]!]!.length : seqs[i]!.length;
        if (cur.length && (cur.length + 1) * width > this.opts.maxBatchTokens) {
          out.push(cur);
          cur = [];
        }
        cur.push(i);
      }
      if (cur.length) out.push(cur);
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}
