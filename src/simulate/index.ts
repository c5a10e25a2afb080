/** The simulator's public surface (docs/simulate.md). */
export * from "./run.js";
export * from "./scheduler-loop.js";
export * from "./policies.js";
export * from "./profile.js";
export * from "./trace.js";
export { costModel } from "./cost.js";
