/**
 * Child for prepare-signals.test.ts: starts a directory swap and a stream write (the shared atomic helpers),
 * prints "ready" once both temporaries exist, then waits for a signal — or crashes when told to.
 */
import { openAtomicWriteStream, replaceDirAtomic } from "../../src/util/atomic.js";

const [out, mode] = process.argv.slice(2) as [string, "wait" | "crash"];
await replaceDirAtomic(out, async (tmp) => {
  const w = await openAtomicWriteStream(`${tmp}/train.jsonl`);
  await w.write("partial\n");
  const side = await openAtomicWriteStream(`${out}.side.jsonl`);
  await side.write("partial\n");
  process.stdout.write("ready\n");
  if (mode === "crash") setTimeout(() => { throw new Error("simulated crash"); }, 10);
  await new Promise(() => setInterval(() => {}, 1000)); // until killed
});
