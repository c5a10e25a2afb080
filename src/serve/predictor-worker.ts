/**
 * Worker-thread entry of `WorkerPredictor` (src/serve/worker-predictor.ts): loads one model directory with
 * `LengthPredictor.load` and answers `predictBatch` requests, so tokenization and inference never run on
 * the server's event loop.
 */
import { parentPort, workerData } from "node:worker_threads";
import { LengthPredictor } from "../predictor/length-predictor.js";
import { resolveModelDir } from "../predictor/bundled.js";
import { readModelMeta } from "../model-dir/index.js";
import { fastFeatures, findFastMember } from "../online/fast-member.js";
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
  port.on("message", (req: WorkerRequest) => {
    predictor.predictBatch(req.prompts, req.quantile === undefined ? {} : { quantile: req.quantile }).then(
      (predictions) => {
        if (ngram) predictions = predictions.map((p, i) => ({ ...p, features: fastFeatures({ ngram }, req.prompts[i]!) }));
        send({ type: "result", id: req.id, predictions });
      },
      (e: unknown) => send({ type: "error", id: req.id, error: serializeError(e) }),
    );
  });
  const fastInfo = fast && { readout: { hidden: fast.readout.hidden, R: Float32Array.from(fast.readout.R), br: fast.readout.br }, weight: fast.weight };
  send({ type: "ready", name: predictor.name, buckets: predictor.buckets, kind: meta.kind, tokenizer: meta.tokenizer, ...(fastInfo ? { fast: fastInfo } : {}) });
} catch (e) {
  send({ type: "load-failed", error: serializeError(e) });
}
