/**
 * Background processes that yield to foreground work completely: while foreground work is in flight they are
 * stopped (SIGSTOP), and they continue (SIGCONT) once none has been in flight for `resumeAfterMs`.
 *
 * Why not just a low CPU priority: a SCHED_IDLE / nice 19 child gets no CPU time a normal thread wants, but
 * while it runs on the other core it still evicts the shared caches and takes memory bandwidth, which measurably
 * slowed the predictions of `lenpred serve` during a DistilBERT retrain (p99 +25–49 %). A stopped process
 * touches nothing. The price: under sustained foreground load a background process makes no progress — it
 * catches up in the gaps (`pausedMs` tells how long it waited).
 */
export interface YieldGateOptions {
  /** Idle time (no foreground work in flight) before stopped processes continue. Default 5 ms. */
  resumeAfterMs?: number;
  /** Signal sender (tests); default `process.kill`. */
  kill?: (pid: number, signal: NodeJS.Signals) => void;
  /** Clock in ms (tests); default `performance.now`. */
  now?: () => number;
}

export interface YieldGateStats {
  /** Times the attached processes were stopped. */
  pauses: number;
  /** Total time they spent stopped, including a pause in progress. */
  pausedMs: number;
}

export class YieldGate {
  private readonly resumeAfterMs: number;
  private readonly kill: (pid: number, signal: NodeJS.Signals) => void;
  private readonly now: () => number;
  private readonly pids = new Set<number>();
  private busy = false;
  private idleSince = 0;
  private pausedAt: number | undefined;
  private pausedTotal = 0;
  private pauses = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: YieldGateOptions = {}) {
    this.resumeAfterMs = opts.resumeAfterMs ?? 5;
    if (!(this.resumeAfterMs >= 0)) throw new RangeError(`resumeAfterMs must be >= 0, got ${this.resumeAfterMs}`);
    this.kill = opts.kill ?? ((pid, signal) => process.kill(pid, signal));
    this.now = opts.now ?? (() => performance.now());
  }

  /** Foreground work started (true) or the last of it ended (false). Cheap when nothing is attached. */
  setBusy(busy: boolean): void {
    if (busy === this.busy) return;
    this.busy = busy;
    if (busy) {
      if (this.pausedAt === undefined && this.pids.size > 0) this.pause();
    } else {
      this.idleSince = this.now();
      if (this.pausedAt !== undefined) this.armResume();
    }
  }

  /**
   * Make `pid` yield from now on (stopped at once if foreground work is in flight). Call the returned function
   * once the process has exited (then it is not signalled again), or with `{ resume: true }` to let it run
   * freely before killing it (a stopped process would not act on SIGTERM).
   */
  attach(pid: number): (opts?: { resume?: boolean }) => void {
    this.pids.add(pid);
    if (this.busy) {
      if (this.pausedAt === undefined) this.pause();
      else this.signal(pid, "SIGSTOP");
    }
    return ({ resume = false } = {}) => {
      if (!this.pids.delete(pid)) return;
      if (resume && this.pausedAt !== undefined) this.signal(pid, "SIGCONT");
      if (this.pids.size === 0 && this.pausedAt !== undefined) this.endPause();
    };
  }

  stats(): YieldGateStats {
    return { pauses: this.pauses, pausedMs: this.pausedTotal + (this.pausedAt === undefined ? 0 : this.now() - this.pausedAt) };
  }

  private pause(): void {
    this.pausedAt = this.now();
    this.pauses++;
    for (const pid of this.pids) this.signal(pid, "SIGSTOP");
  }

  private endPause(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pausedTotal += this.now() - this.pausedAt!;
    this.pausedAt = undefined;
  }

  /** One timer at most: it re-arms itself for the rest of the idle time instead of being reset on every transition. */
  private armResume(): void {
    if (this.timer) return;
    const wait = Math.max(0, this.resumeAfterMs - (this.now() - this.idleSince));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.busy || this.pausedAt === undefined) return; // busy again: the next idle re-arms
      if (this.now() - this.idleSince < this.resumeAfterMs) return this.armResume();
      for (const pid of this.pids) this.signal(pid, "SIGCONT");
      this.endPause();
    }, wait);
    this.timer.unref();
  }

  private signal(pid: number, signal: NodeJS.Signals): void {
    try {
      this.kill(pid, signal);
    } catch { /* exited in the meantime: its exit handler detaches it */ }
  }
}
