/**
 * Item 6: SIGINT/SIGTERM/a crash leave no `OUT.tmp-*` behind (one cleanup registry in src/util/atomic.ts for
 * every writer), and temporaries of dead processes (kill -9) are swept by the next run.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openAtomicWriteStream, replaceDirAtomic, sweepStaleTemps, trackedTemps, writeFileAtomic } from "../../src/util/atomic.js";
import { repoRoot } from "../../src/util/paths.js";
import { runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/tmp.js";
import { temps, writeAlpaca } from "./prepare-helpers.js";

const dir = tempDir("lenpred-signals-");
const CHILD = join(repoRoot, "test", "robustness", "prepare-signal-child.ts");

/** Run a command; once `ready(dirEntries, stdout)` holds, send `signal`. Resolves with how it ended. */
function runUntil(args: string[], watch: string, ready: (entries: string[], stdout: string) => boolean, signal?: NodeJS.Signals) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; sent: boolean }>((resolve, reject) => {
    const p = spawn(process.execPath, ["--import", "tsx", ...args], { cwd: repoRoot });
    let stdout = "";
    let stderr = "";
    let sent = false;
    p.stdout.on("data", (d: Buffer) => { stdout += d.toString(); });
    p.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    const poll = setInterval(() => {
      if (!sent && signal && ready(readdirSync(watch), stdout)) {
        sent = true;
        p.kill(signal);
      }
    }, 5);
    p.on("error", reject);
    p.on("close", (code, sig) => { clearInterval(poll); resolve({ code, signal: sig, stdout, stderr, sent }); });
  });
}

/** The pid of a process that has exited (for fake leftovers of a killed run). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

describe("temporaries never outlive their process", () => {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    it(`${signal} during a write removes the directory and file temporaries, and the process still dies of the signal`, async () => {
      const work = join(dir, signal);
      mkdirSync(work);
      const r = await runUntil([CHILD, join(work, "out"), "wait"], work, (_, out) => out.includes("ready"), signal);
      expect(r.sent).toBe(true);
      expect(r.signal).toBe(signal);
      expect(readdirSync(work)).toEqual([]);
    });
  }

  it("a crash (uncaught exception) removes them too", async () => {
    const work = join(dir, "crash");
    mkdirSync(work);
    const r = await runUntil([CHILD, join(work, "out"), "crash"], work, () => false);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/simulated crash/);
    expect(readdirSync(work)).toEqual([]);
  });

  it("SIGINT during `lenpred prepare` leaves nothing and keeps the previous output", async () => {
    const work = join(dir, "cli");
    mkdirSync(work);
    const input = join(dir, "big.json");
    writeAlpaca(input, 30_000, 120); // seconds of tokenizing: the signal lands mid-run
    const out = join(work, "out");
    writeAlpaca(join(dir, "small.json"), 4);
    expect(runCli(["prepare", "-i", join(dir, "small.json"), "-o", out, "-q", "--val-fraction", "0.5"]).code).toBe(0);
    const before = readFileSync(join(out, "stats.json"), "utf8");
    const r = await runUntil([join(repoRoot, "src", "cli.ts"), "prepare", "-i", input, "-o", out, "-q", "--threads", "2"], work, (e) => temps(e).length > 0, "SIGINT");
    expect(r.sent, "prepare finished before the signal").toBe(true);
    expect(r.signal).toBe("SIGINT");
    expect(readdirSync(work)).toEqual(["out"]);
    expect(readFileSync(join(out, "stats.json"), "utf8")).toBe(before);
  }, 60_000);

  it("the next run sweeps temporaries of dead processes, restores a swapped-out directory, and spares live ones", async () => {
    const work = join(dir, "sweep");
    mkdirSync(work);
    const dead = deadPid();
    const out = join(work, "out");
    mkdirSync(join(work, `out.tmp-${dead}-0`)); // half-filled new version
    mkdirSync(join(work, `out.tmp-${dead}-1.old`)); // previous version, moved aside just before the crash
    writeFileSync(join(work, `out.tmp-${dead}-1.old`, "stats.json"), "previous");
    mkdirSync(join(work, `out.tmp-${process.pid}-99`)); // a live writer's (ours)
    writeFileSync(join(work, `f.json.tmp-${dead}-3`), "half");
    await sweepStaleTemps(out);
    expect(readFileSync(join(out, "stats.json"), "utf8")).toBe("previous");
    expect(readdirSync(work).sort()).toEqual([`f.json.tmp-${dead}-3`, "out", `out.tmp-${process.pid}-99`]);
    await writeFileAtomic(join(work, "f.json"), "new"); // every writer sweeps its own path
    expect(readdirSync(work).sort()).toEqual(["f.json", "out", `out.tmp-${process.pid}-99`]);

    mkdirSync(join(work, `out.tmp-${dead}-5`));
    const r = runCli(["prepare", "-i", join(dir, "small.json"), "-o", out, "-q", "--val-fraction", "0.5"]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(work).sort()).toEqual(["f.json", "out", `out.tmp-${process.pid}-99`]);
  });

  it("the registry lets go: after commit, abort and failure nothing is tracked and no signal handler is left installed", async () => {
    const work = join(dir, "registry");
    const listeners = () => ["SIGINT", "SIGTERM", "exit"].map((s) => process.listenerCount(s));
    const base = listeners();
    await writeFileAtomic(join(work, "a.json"), "x");
    const w = await openAtomicWriteStream(join(work, "b.jsonl"));
    await w.write("x\n");
    expect(trackedTemps()).toHaveLength(1);
    expect(listeners()).toEqual(base.map((n) => n + 1));
    await w.commit();
    const v = await openAtomicWriteStream(join(work, "c.jsonl"));
    await v.abort();
    await expect(replaceDirAtomic(join(work, "d"), async () => { throw new Error("boom"); })).rejects.toThrow("boom");
    await expect(replaceDirAtomic(join(work, "a.json"), async () => {})).rejects.toThrow(/a\.json: exists and is not a directory/);
    expect(trackedTemps()).toEqual([]);
    expect(listeners()).toEqual(base);
    expect(readdirSync(work).sort()).toEqual(["a.json", "b.jsonl"]);
  });
});
