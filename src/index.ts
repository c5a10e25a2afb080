/** Library entry point: the typed API of lenpred. */
export * from "./data/buckets.js";
export type * from "./data/records.js";
export type * from "./model/prediction.js";
export { LenpredError } from "./util/errors.js";
export { LengthPredictor, type LengthPredictorOptions, type PredictOptions } from "./predictor/length-predictor.js";
export { loadPredictor, registerModelKind, type ModelKindLoader } from "./predictor/load.js";
export { readModelMeta, type ModelMeta } from "./model-dir/index.js";
export { bundledModels, bundledModelsDir, DEFAULT_MODEL, resolveBundledModel, resolveModelDir } from "./predictor/bundled.js";
export { hubSnapshot, hubCacheDir, parseRepoSpec, type HubOptions, type SnapshotFile } from "./hub/client.js";
export { loadTokenizer, tokenizerJsonPath, type Tokenizer } from "./tokenizers/index.js";
export { prepareDataset, type PrepareOptions, type PrepareStats } from "./data/prepare.js";
export { computeMetrics } from "./metrics/metrics.js";
export { kendallTauB } from "./metrics/kendall.js";
export { evaluateFiles } from "./metrics/evaluate.js";
export { runSimulation, type SimulateConfig, type SimulationReport } from "./simulate/index.js";
// Online learning of the deployed LLM (docs/online.md).
export * from "./online/index.js";
// The engine (`lenpred/engine`) and the HTTP server (`lenpred/serve`) are separate entry points so that
// importing the predictor API does not load Fastify or the graph builder (test/package.test.ts checks it).
