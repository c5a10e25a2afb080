import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { YieldGate } from "../src/util/yield-gate.js";
import { backgroundCommand } from "../src/util/background-process.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A gate whose signals are recorded, on a clock the test moves. */
function recorded(resumeAfterMs = 20) {
  const sent: string[] = [];
  let t = 0;
  const gate = new YieldGate({ resumeAfterMs, kill: (pid, sig) => { sent.push(`${sig} ${pid}`); }, now: () => t });
  return { gate, sent, advance: (ms: number) => { t += ms; } };
}

describe("YieldGate", () => {
  it("stops attached processes while busy and continues them only after resumeAfterMs of idle time", async () => {
    const { gate, sent, advance } = recorded(20);
    gate.setBusy(true);
    gate.setBusy(false); // nothing attached: no signal at all
    const detach = gate.attach(7);
    expect(sent).toEqual([]);
    gate.setBusy(true);
    expect(sent).toEqual(["SIGSTOP 7"]);
    gate.setBusy(false);
    advance(5);
    gate.setBusy(true); // busy again before the idle time is up: stays stopped
    gate.setBusy(false);
    await sleep(40);
    expect(sent).toEqual(["SIGSTOP 7"]); // the clock has moved only 5 ms since the first idle, 0 since the last
    advance(25);
    await sleep(40);
    expect(sent).toEqual(["SIGSTOP 7", "SIGCONT 7"]);
    expect(gate.stats()).toEqual({ pauses: 1, pausedMs: 30 });
    gate.setBusy(true);
    advance(10);
    expect(gate.stats()).toEqual({ pauses: 2, pausedMs: 40 }); // a pause in progress counts
    detach(); // exited: never signalled again, the pause ends
    advance(10);
    gate.setBusy(false);
    gate.setBusy(true);
    expect(sent).toEqual(["SIGSTOP 7", "SIGCONT 7", "SIGSTOP 7"]);
    expect(gate.stats().pausedMs).toBe(40);
  });

  it("stops a process attached while busy, and continues it on a detach that asks to resume (before a kill)", () => {
    const { gate, sent } = recorded();
    gate.setBusy(true);
    const a = gate.attach(1);
    const b = gate.attach(2);
    expect(sent).toEqual(["SIGSTOP 1", "SIGSTOP 2"]);
    a({ resume: true });
    b();
    expect(sent).toEqual(["SIGSTOP 1", "SIGSTOP 2", "SIGCONT 1"]);
  });

  it.runIf(process.platform === "linux")("really stops a process: it makes no progress while busy and resumes after", async () => {
    const child = spawn(process.execPath, ["-e", "let n = 0; setInterval(() => { n++; process.stdout.write(n + '\\n'); }, 5);"], { stdio: ["ignore", "pipe", "ignore"] });
    let ticks = 0;
    child.stdout!.on("data", (d: Buffer) => { ticks += d.toString().split("\n").length - 1; });
    try {
      while (ticks < 3) await sleep(10);
      const gate = new YieldGate({ resumeAfterMs: 10 });
      gate.attach(child.pid!);
      gate.setBusy(true);
      await sleep(50);
      expect(readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]![0]).toBe("T");
      const stopped = ticks;
      await sleep(300);
      expect(ticks).toBe(stopped);
      gate.setBusy(false);
      while (ticks < stopped + 3) await sleep(10); // hangs (test timeout) if it was never continued
      expect(gate.stats().pausedMs).toBeGreaterThanOrEqual(300);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("backgroundCommand", () => {
  it.runIf(process.platform === "linux")("runs at SCHED_IDLE and dies with its parent even while stopped (kill -9 of the parent)", { timeout: 90_000 }, async () => {
    const { argv, diesWithParent } = backgroundCommand(["sleep", "600"]);
    expect(diesWithParent).toBe(true);
    // A parent that starts the background process, reports its pid and waits to be killed.
    const parent = spawn(process.execPath, ["-e", `
      const c = require("node:child_process").spawn(${JSON.stringify(argv[0])}, ${JSON.stringify(argv.slice(1))}, { stdio: "ignore" });
      console.log(c.pid);
      setInterval(() => {}, 1000);`], { stdio: ["ignore", "pipe", "ignore"] });
    const pid = Number(await new Promise<string>((r) => parent.stdout!.once("data", (d: Buffer) => r(d.toString()))));
    const stat = () => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!;
    // setpriv and chrt exec the next program in the same process; at SCHED_IDLE that may wait for an idle CPU.
    for (let i = 0; i < 3000 && readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] !== "sleep"; i++) await sleep(10);
    expect(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]).toBe("sleep");
    expect(readFileSync(`/proc/${pid}/sched`, "utf8")).toMatch(/^policy\s+:\s+5$/m); // SCHED_IDLE
    process.kill(pid, "SIGSTOP");
    for (let i = 0; i < 3000 && stat()[0] !== "T"; i++) await sleep(10);
    expect(stat()[0]).toBe("T");
    parent.kill("SIGKILL");
    const alive = () => { try { process.kill(pid, 0); return !stat().startsWith("Z"); } catch { return false; } };
    for (let i = 0; i < 3000 && alive(); i++) await sleep(10); // exiting needs a CPU too
    expect(alive()).toBe(false);
  });
});
