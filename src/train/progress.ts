/**
 * Terminal progress for `lenpred train`: one bar per epoch with step count, running loss, tokens/s and ETA
 * (cli-progress, on stderr). Without a TTY (logs, CI) it prints a plain line every 30 s instead.
 */
import cliProgress from "cli-progress";
import type { StepProgress } from "./loop.js";

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}h${String(m).padStart(2, "0")}m` : m ? `${m}m${String(r).padStart(2, "0")}s` : `${r}s`;
}

export class TrainProgress {
  private bar?: cliProgress.SingleBar;
  private readonly tty = Boolean(process.stderr.isTTY);
  private lastLine = 0;
  private start = 0;
  private startBatch = 0;

  constructor(private readonly enabled = true) {}

  epochStart(epoch: number, epochs: number, batches: number, resumedAt: number): void {
    if (!this.enabled) return;
    this.start = Date.now();
    this.startBatch = resumedAt;
    if (this.tty) {
      this.bar = new cliProgress.SingleBar({
        format: `epoch ${epoch + 1}/${epochs} [{bar}] {value}/{total} | loss {loss} | {tps} tok/s | ETA {eta_h}`,
        stream: process.stderr, hideCursor: true, clearOnComplete: true, barsize: 28,
      }, cliProgress.Presets.shades_classic);
      this.bar.start(batches, resumedAt, { loss: "-", tps: "-", eta_h: "?" });
    } else {
      process.stderr.write(`epoch ${epoch + 1}/${epochs}: ${batches} steps${resumedAt ? ` (resuming at ${resumedAt})` : ""}\n`);
    }
  }

  step(p: StepProgress): void {
    if (!this.enabled) return;
    const done = p.batch - this.startBatch;
    const elapsed = (Date.now() - this.start) / 1000;
    const eta = done > 0 ? (elapsed / done) * (p.batches - p.batch) : NaN;
    const fields = { loss: p.loss.toFixed(4), tps: Math.round(p.tokensPerSecond), eta_h: formatDuration(eta) };
    if (this.bar) this.bar.update(p.batch, fields);
    else if (!this.tty && Date.now() - this.lastLine > 30_000 || p.batch === p.batches) {
      this.lastLine = Date.now();
      process.stderr.write(`  step ${p.batch}/${p.batches} loss ${fields.loss} ${fields.tps} tok/s ETA ${fields.eta_h}\n`);
    }
  }

  validating(done: number, total: number): void {
    if (!this.enabled) return;
    if (this.bar) {
      this.bar.stop();
      this.bar = undefined;
    }
    if (this.tty) process.stderr.write(`\r  validating ${done}/${total}${done === total ? "\n" : ""}`);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
