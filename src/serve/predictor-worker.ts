/**
 * Worker-thread entry of `WorkerPredictor` (src/serve/worker-predictor.ts): loads one model directory with
 * `LengthPredictor.load` and answers `predictBatch` requests, so tokenization and inference never run on
 * the server's event loop.
 */
import { parentPort, workerData } from "node:worker_threads";
import { LengthPredictor } from "../predictor/length-predictor.js";
import { resolveModelDir } from "../predictor/bundled.js";
import { readModelMeta } from "../model-dir/index.js";
import { fastFeatures, findFastMember, findMember } from "../online/fast-member.js";
import type { Predictor } from "../model/prediction.js";
import { serializeError, type WorkerInit, type WorkerMessage, type WorkerRequest } from "./worker-predictor.js";

const port = parentPort!;
const init = workerData as WorkerInit;
const send = (m: WorkerMessage) => port.postMessage(m);

try {
  // A directory, a bundled model name or a hub id, resolved as LengthPredictor.load resolves it.
  const dir = await resolveModelDir(init.modelDir, init.load.hub);
  const meta = await readModelMeta(dir);
  const predictor = await LengthPredictor.load(dir, init.load);
  // For a main-thread OnlineLearner: each prediction carries the n-gram member's hidden vector (its features).
  const fast = init.features ? findFastMember(predictor) : undefined;
  const ngram = fast?.ngram;
  // Retrained DistilBERT members (per target, chosen by the main thread's learner): handle → member, with a
  // count of its batches in flight so an unload disposes it only after they are done.
  const slow = init.features ? findMember(predictor, (p) => p.name === "distilbert") : undefined;
  const members = new Map<number, { predictor: Predictor & { dispose?(): Promise<void> }; inflight: number; unloading: boolean }>([
    ...(slow ? [[0, { predictor: slow.predictor, inflight: 0, unloading: false }] as const] : []),
  ]);
  let nextHandle = 1;
  const release = (handle: number) => {
    const m = members.get(handle);
    if (!m || handle === 0 || !m.unloading || m.inflight > 0) return;
    members.delete(handle);
    m.predictor.dispose?.().catch(() => undefined);
  };
  const fail = (id: number) => (e: unknown) => send({ type: "error", id, error: serializeError(e) });
  port.on("message", (req: WorkerRequest) => {
    if ("load" in req) {
      import("../predictor/distilbert-predictor.js")
        .then(({ DistilBertPredictor }) => DistilBertPredictor.load(req.load, { threads: 1 }) /* as OnlineService loads one in-process */)
        .then((p) => { const handle = nextHandle++; members.set(handle, { predictor: p, inflight: 0, unloading: false }); send({ type: "loaded", id: req.id, handle }); }, fail(req.id));
      return;
    }
    if ("unload" in req) {
      const m = members.get(req.unload);
      if (m) m.unloading = true;
      release(req.unload);
      send({ type: "result", id: req.id, predictions: [] });
      return;
    }
    if (req.member !== undefined) {
      const m = members.get(req.member);
      if (!m || m.unloading) return fail(req.id)(new Error(`no member ${req.member} loaded in the predictor worker`));
      m.inflight++;
      m.predictor.predictBatch(req.prompts).then((predictions) => send({ type: "result", id: req.id, predictions }), fail(req.id))
        .finally(() => { m.inflight--; release(req.member!); });
      return;
    }
    predictor.predictBatch(req.prompts, req.quantile === undefined ? {} : { quantile: req.quantile }).then(
      (predictions) => {
        if (ngram) predictions = predictions.map((p, i) => ({ ...p, features: fastFeatures({ ngram }, req.prompts[i]!) }));
        send({ type: "result", id: req.id, predictions });
      },
      fail(req.id),
    );
  });
  const fastInfo = fast && { readout: { hidden: fast.readout.hidden, R: Float32Array.from(fast.readout.R), br: fast.readout.br }, weight: fast.weight };
  send({ type: "ready", name: predictor.name, buckets: predictor.buckets, kind: meta.kind, tokenizer: meta.tokenizer, ...(fastInfo ? { fast: fastInfo } : {}), ...(slow ? { slow: { weight: slow.weight } } : {}) });
} catch (e) {
  send({ type: "load-failed", error: serializeError(e) });
}
