/**
 * Worker-thread entry of `WorkerPredictor` (src/serve/worker-predictor.ts): loads one model directory with
 * `LengthPredictor.load` and answers `predictBatch` requests, so tokenization and inference never run on
 * the server's event loop.
 */
import { parentPort, workerData } from "node:worker_threads";
import { LengthPredictor } from "../predictor/length-predictor.js";
import { resolveModelDir } from "../predictor/bundled.js";
import { readModelMeta } from "../predictor/load.js";
import { serializeError, type WorkerInit, type WorkerMessage, type WorkerRequest } from "./worker-predictor.js";

const port = parentPort!;
const init = workerData as WorkerInit;
const send = (m: WorkerMessage) => port.postMessage(m);

try {
  // A directory, a bundled model name or a hub id, resolved as LengthPredictor.load resolves it.
  const dir = await resolveModelDir(init.modelDir, init.load.hub);
  const meta = await readModelMeta(dir);
  const predictor = await LengthPredictor.load(dir, init.load);
  port.on("message", (req: WorkerRequest) => {
    predictor.predictBatch(req.prompts, req.quantile === undefined ? {} : { quantile: req.quantile }).then(
      (predictions) => send({ type: "result", id: req.id, predictions }),
      (e: unknown) => send({ type: "error", id: req.id, error: serializeError(e) }),
    );
  });
  send({ type: "ready", name: predictor.name, buckets: predictor.buckets, kind: meta.kind, tokenizer: meta.tokenizer });
} catch (e) {
  send({ type: "load-failed", error: serializeError(e) });
}
