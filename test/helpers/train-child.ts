/**
 * A training process for kill -9 / SIGINT tests: the real loop, run directory and Ctrl-C handling with the
 * BowModel double, slowed a little per step so signals land mid-run. Usage: train-child.ts <out> [--resume]
 * Prints "step N" after every step; exits 130 when interrupted, like `lenpred train`.
 */
import { train } from "../../src/train/loop.js";
import { hasCheckpoint, loadRun, recoverOutDir } from "../../src/train/run-dir.js";
import { interruptSignal } from "../../src/train/interrupt.js";
import { CHILD_OPTIONS, bowHooks, childData, testOptions } from "./train-fixtures.js";

const [out, flag] = process.argv.slice(2);
if (out) {
  await recoverOutDir(out);
  const o = testOptions(out, CHILD_OPTIONS);
  const intr = interruptSignal();
  const hooks = bowHooks(o, { signal: intr.signal, onStep: (p) => process.stdout.write(`step ${p.globalStep}\n`) });
  const create = hooks.createModel;
  hooks.createModel = async () => {
    const m = await create();
    const step = m.trainStep.bind(m);
    m.trainStep = async (b, s) => {
      await new Promise((r) => setTimeout(r, 3));
      return step(b, s);
    };
    return m;
  };
  const resume = flag === "--resume" && (await hasCheckpoint(out)) ? await loadRun(out) : undefined;
  const res = await train(o, childData(), hooks, resume);
  intr.dispose();
  process.stdout.write(`status ${res.status}\n`);
  process.exit(res.status === "interrupted" ? 130 : 0);
}
