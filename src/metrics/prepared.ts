/**
 * Moved to src/data/prepared-dir.ts (the one owner of the prepared-directory format); this re-export keeps
 * `src/train/data.ts` and the benches working until they import it from there.
 */
export { checkSplit, readPreparedScheme, readPreparedSplit, type PreparedSplit } from "../data/prepared-dir.js";
