/**
 * Test double for `TrainableModel`: mean-pooled bag of token ids → linear head, trained with its own AdamW
 * (decoupled weight decay as torch.optim.AdamW, global-norm clipping) and a seeded token dropout, in pure
 * TypeScript. It is a real (tiny) learner, so the loop's schedule, metrics, best checkpoint, early stopping and
 * bit-exact resume are exercised on actual optimisation, without the DistilBERT engine.
 */
import type { HeadKind } from "../../src/model/config.js";
import type { NamedTensors } from "../../src/engine/tensors.js";
import { createRng, type Rng } from "../../src/util/rng.js";
import type { LabeledBatch, TokenBatch, TrainableModel, TrainStepOptions } from "../../src/model/trainable.js";

export interface BowOptions {
  vocab: number;
  outputs: number;
  head: HeadKind;
  quantiles?: number[];
  seed: number;
  tokenDropout?: number;
}

export class BowModel implements TrainableModel {
  readonly numOutputs: number;
  w: Float32Array;
  b: Float32Array;
  private m: Float32Array[];
  private v: Float32Array[];
  private step = 0;
  private rng: Rng;
  disposed = false;
  stepsTaken = 0;

  constructor(private o: BowOptions) {
    this.numOutputs = o.outputs;
    const init = createRng(o.seed);
    this.w = Float32Array.from({ length: o.vocab * o.outputs }, () => (init.next() - 0.5) * 0.02);
    this.b = new Float32Array(o.outputs);
    this.m = [new Float32Array(this.w.length), new Float32Array(this.b.length)];
    this.v = [new Float32Array(this.w.length), new Float32Array(this.b.length)];
    this.rng = createRng(`${o.seed}-dropout`);
  }

  private rowOutputs(batch: TokenBatch, r: number, keep: (t: number) => boolean): { out: Float64Array; ids: number[] } {
    const K = this.numOutputs;
    const ids: number[] = [];
    for (let j = 0; j < batch.seqLen; j++) {
      if (batch.attentionMask[r * batch.seqLen + j] === 1n && keep(j)) ids.push(Number(batch.inputIds[r * batch.seqLen + j]));
    }
    if (ids.length === 0) ids.push(Number(batch.inputIds[r * batch.seqLen]));
    const out = new Float64Array(K);
    for (const id of ids) for (let k = 0; k < K; k++) out[k]! += this.w[id * K + k]! / ids.length;
    for (let k = 0; k < K; k++) out[k]! += this.b[k]!;
    return { out, ids };
  }

  async forward(batch: TokenBatch): Promise<Float32Array> {
    const K = this.numOutputs;
    const res = new Float32Array(batch.batch * K);
    for (let r = 0; r < batch.batch; r++) res.set(this.rowOutputs(batch, r, () => true).out, r * K);
    return res;
  }

  async trainStep(batch: LabeledBatch, opts: TrainStepOptions): Promise<number> {
    const K = this.numOutputs;
    const gw = new Float32Array(this.w.length), gb = new Float32Array(this.b.length);
    const p = this.o.tokenDropout ?? 0;
    let loss = 0;
    for (let r = 0; r < batch.batch; r++) {
      const { out, ids } = this.rowOutputs(batch, r, () => this.rng.next() >= p);
      const g = new Float64Array(K);
      if (this.o.head === "classification") {
        const max = Math.max(...out);
        const e = Array.from(out, (x) => Math.exp(x - max));
        const z = e.reduce((a, c) => a + c, 0);
        const y = batch.labels![r]!;
        loss += Math.log(z) + max - out[y]!;
        for (let k = 0; k < K; k++) g[k] = e[k]! / z - (k === y ? 1 : 0);
      } else if (this.o.head === "regression") {
        const d = out[0]! - batch.targets![r]!;
        loss += d * d;
        g[0] = 2 * d;
      } else {
        const qs = this.o.quantiles!;
        for (let k = 0; k < K; k++) {
          const d = batch.targets![r]! - out[k]!;
          loss += Math.max(qs[k]! * d, (qs[k]! - 1) * d) / K;
          g[k] = (d > 0 ? -qs[k]! : 1 - qs[k]!) / K;
        }
      }
      for (const id of ids) for (let k = 0; k < K; k++) gw[id * K + k]! += g[k]! / ids.length / batch.batch;
      for (let k = 0; k < K; k++) gb[k]! += g[k]! / batch.batch;
    }
    if (opts.maxGradNorm) {
      let n2 = 0;
      for (const a of [gw, gb]) for (let i = 0; i < a.length; i++) n2 += a[i]! * a[i]!;
      const scale = opts.maxGradNorm / (Math.sqrt(n2) + 1e-6);
      if (scale < 1) for (const a of [gw, gb]) for (let i = 0; i < a.length; i++) a[i]! *= scale;
    }
    this.step++;
    const [b1, b2, eps] = [0.9, 0.999, 1e-8];
    const params = [this.w, this.b], grads = [gw, gb];
    for (let t = 0; t < 2; t++) {
      const pa = params[t]!, ga = grads[t]!, m = this.m[t]!, v = this.v[t]!;
      for (let i = 0; i < pa.length; i++) {
        pa[i]! *= 1 - opts.learningRate * opts.weightDecay;
        m[i] = b1 * m[i]! + (1 - b1) * ga[i]!;
        v[i] = b2 * v[i]! + (1 - b2) * ga[i]! * ga[i]!;
        const mh = m[i]! / (1 - b1 ** this.step), vh = v[i]! / (1 - b2 ** this.step);
        pa[i]! -= (opts.learningRate * mh) / (Math.sqrt(vh) + eps);
      }
    }
    this.stepsTaken++;
    return loss / batch.batch;
  }

  parameters(): NamedTensors {
    return new Map([
      ["w", { shape: [this.o.vocab, this.numOutputs], data: Float32Array.from(this.w) }],
      ["b", { shape: [this.numOutputs], data: Float32Array.from(this.b) }],
    ]);
  }

  optimizerState(): { step: number; tensors: NamedTensors } {
    const t = this.parameters();
    t.set("w.exp_avg", { shape: [this.w.length], data: Float32Array.from(this.m[0]!) });
    t.set("b.exp_avg", { shape: [this.b.length], data: Float32Array.from(this.m[1]!) });
    t.set("w.exp_avg_sq", { shape: [this.w.length], data: Float32Array.from(this.v[0]!) });
    t.set("b.exp_avg_sq", { shape: [this.b.length], data: Float32Array.from(this.v[1]!) });
    return { step: this.step, tensors: t };
  }

  loadOptimizerState(s: { step: number; tensors: NamedTensors }): void {
    this.step = s.step;
    this.w.set(s.tensors.get("w")!.data);
    this.b.set(s.tensors.get("b")!.data);
    this.m[0]!.set(s.tensors.get("w.exp_avg")!.data);
    this.m[1]!.set(s.tensors.get("b.exp_avg")!.data);
    this.v[0]!.set(s.tensors.get("w.exp_avg_sq")!.data);
    this.v[1]!.set(s.tensors.get("b.exp_avg_sq")!.data);
  }

  randomState(): unknown {
    return this.rng.state();
  }

  setRandomState(state: unknown): void {
    this.rng = createRng(0, state as object);
  }

  async dispose(): Promise<void> {
    this.disposed = true;
  }
}
