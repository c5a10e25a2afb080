/** The model-directory format (names, lenpred.json) and the confinement gate every reader goes through. */
export * from "./confine.js";
export * from "./format.js";
