/**
 * The command line of a background process (e.g. a retrain child) that must never compete with the parent's
 * foreground work and must not outlive it.
 *
 *  - `chrt --idle 0` (Linux): SCHED_IDLE for every thread of the process from its start — it yields the CPU to
 *    any normal thread. nice 19 only lowers the weight, and set after spawn it misses the threads Node starts
 *    before the call (the caller still sets it, for systems without chrt).
 *  - `setpriv --pdeathsig KILL` (Linux): the kernel kills the process when its parent dies. A process a
 *    `YieldGate` stopped cannot notice that its parent was killed (kill -9) and would stay behind, stopped.
 */
import { existsSync } from "node:fs";

const find = (names: string[]) => names.find((f) => existsSync(f));

export interface BackgroundCommand {
  argv: string[];
  /** Whether the kernel kills the process with its parent (only then may it be stopped safely). */
  diesWithParent: boolean;
}

export function backgroundCommand(command: readonly string[]): BackgroundCommand {
  if (process.platform !== "linux") return { argv: [...command], diesWithParent: false };
  const setpriv = find(["/usr/bin/setpriv", "/bin/setpriv"]);
  const chrt = find(["/usr/bin/chrt", "/bin/chrt"]);
  return {
    argv: [...(setpriv ? [setpriv, "--pdeathsig", "KILL"] : []), ...(chrt ? [chrt, "--idle", "0"] : []), ...command],
    diesWithParent: setpriv !== undefined,
  };
}
