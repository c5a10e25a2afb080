/** Real processes: Ctrl-C leaves a resumable checkpoint, kill -9 never leaves a corrupt directory. */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { train } from "../src/train/loop.js";
import { CHECKPOINT_DIR, TRAINING_FILE, loadRun, recoverOutDir } from "../src/train/run-dir.js";
import { readSafetensors } from "../src/model/safetensors.js";
import { repoRoot } from "../src/util/paths.js";
import { CHILD_OPTIONS, bowHooks, childData, testOptions } from "./helpers/train-fixtures.js";
import { tempDir } from "./helpers/tmp.js";

const root = tempDir("lenpred-train-signals-");
const CHILD = join(repoRoot, "test", "helpers", "train-child.ts");

/** Run the child; when it prints "step <atStep>", send `signal`. Resolves with exit code/signal and output. */
function runChild(out: string, resume: boolean, atStep?: number, signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--import", "tsx", CHILD, out, ...(resume ? ["--resume"] : [])], { cwd: repoRoot });
    let stdout = "";
    let sent = false;
    p.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      if (!sent && atStep !== undefined && stdout.includes(`step ${atStep}\n`)) {
        sent = true;
        p.kill(signal);
      }
    });
    p.stderr.on("data", (d: Buffer) => { stdout += d.toString(); });
    p.on("error", reject);
    p.on("close", (code, sig) => resolve({ code, signal: sig, stdout }));
  });
}

async function reference(): Promise<Float32Array> {
  const out = join(root, "reference");
  const o = testOptions(out, CHILD_OPTIONS);
  await train(o, childData(), bowHooks(o));
  return (await loadRun(out)).optimizer.get("w")!.data;
}

/** Whatever a kill left must be readable: summary, checkpoint, and model files when present. */
async function assertConsistent(out: string): Promise<void> {
  await recoverOutDir(out);
  if (!existsSync(out)) return;
  expect(() => JSON.parse(readFileSync(join(out, TRAINING_FILE), "utf8"))).not.toThrow();
  if (existsSync(join(out, CHECKPOINT_DIR))) await loadRun(out);
  if (existsSync(join(out, "lenpred.json"))) {
    JSON.parse(readFileSync(join(out, "lenpred.json"), "utf8"));
    await readSafetensors(join(out, "weights.safetensors"));
  }
}

describe("train under signals", () => {
  it("Ctrl-C (SIGINT) stops with exit 130 and a checkpoint that resumes to the uninterrupted result", async () => {
    const ref = await reference();
    const out = join(root, "sigint");
    const r1 = await runChild(out, false, 20, "SIGINT");
    expect(r1.code, r1.stdout).toBe(130);
    expect(r1.stdout).toContain("status interrupted");
    const ck = await loadRun(out);
    expect(ck.state.status).toBe("interrupted");
    expect(ck.state.globalStep).toBeGreaterThanOrEqual(20);
    expect(ck.state.globalStep).toBeLessThan(75);
    const r2 = await runChild(out, true);
    expect(r2.code, r2.stdout).toBe(0);
    expect((await loadRun(out)).optimizer.get("w")!.data).toEqual(ref);
  });

  it("kill -9 at arbitrary points never corrupts the directory, and resuming still gives the same model", async () => {
    const ref = await reference();
    const out = join(root, "sigkill");
    const kills = [7, 16, 31, 44, 58, 70];
    let done = false;
    for (const [i, k] of kills.entries()) {
      const r = await runChild(out, i > 0, k, "SIGKILL");
      if (r.code === 0) { done = true; break; } // finished before the step we waited for (resumed past it)
      expect(r.signal, r.stdout).toBe("SIGKILL");
      await assertConsistent(out);
    }
    if (!done) {
      const r = await runChild(out, true);
      expect(r.code, r.stdout).toBe(0);
    }
    await assertConsistent(out);
    const final = await loadRun(out);
    expect(final.state.status).toBe("completed");
    expect(final.optimizer.get("w")!.data).toEqual(ref);
  });
});
