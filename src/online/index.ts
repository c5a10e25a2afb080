/** Online learning of the deployed LLM: see docs/online.md. */
export { OnlineLearner, type OnlineLearnerOptions, type OnlinePrediction, type LearnerSnapshot } from "./learner.js";
export { OnlineService, SNAPSHOT_FILE, type OnlineServiceOptions, type ServiceStats } from "./service.js";
export { ObservationStore, readSegments, listSegments, SEGMENT_DIR, LOCK_FILE, type StoreOptions, type StoredObservation } from "./store.js";
export { validateObservations, validateObservation, checkModelName, DEFAULT_OBSERVATION_LIMITS, DEFAULT_TARGET, type Observation, type ValidObservation, type ObservationLimits } from "./observation.js";
export { Calibrator, DEFAULT_CALIBRATOR, type CalibratorOptions } from "./calibrator.js";
export type { LiveStats } from "./stats.js";
