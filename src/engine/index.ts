/**
 * lenpred's training engine: describe the computation in TypeScript (graph.ts + ops.ts), derive the gradient
 * graph (autodiff.ts), emit ONNX and run it with onnxruntime-node (session.ts); optim.ts is the training step.
 */
export { attr, type Attr, type ConstData, DEFAULT_OPSET, type DType, type Dim, Graph, type Node, type Shape, Tensor, type TypedData } from "./graph.js";
export * as op from "./ops.js";
export { grad, sumTo, VJP } from "./autodiff.js";
export { type Feeds, f32, f64, hostData, i64, ort, type OrtTensor, ortSessionOptions, scalarOf, Session, type SessionOptions, toOrt } from "./session.js";
export { adamwScalars, adamwUpdate, type AdamWOptions, clipCoefficient, defaultDecays, type StepResult, Trainer, type TrainerSpec } from "./optim.js";
export { linearWarmupDecay } from "./schedule.js";
export { gradCheck, randomInput, type CheckInput, type GradCheckResult } from "./gradcheck.js";
export { dropoutMaskHost, dropThreshold, keyedDropout, lowbias32, stepSeed } from "./random.js";
