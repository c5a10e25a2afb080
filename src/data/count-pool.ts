/**
 * Token counting on worker threads. Tokenizing is nearly all of `prepare`'s CPU time and each text is
 * independent, so batches go to N workers (each with its own tokenizer) while the main thread reads and writes.
 * Results come back per batch; the caller keeps order by awaiting batches in submission order.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { LenpredError } from "../util/errors.js";
import type { HubOptions } from "../tokenizers/index.js";

export interface CountRequest { id: number; special: boolean; prompts: string[]; outputs: Array<string | null> }
export interface CountResponse { id: number; prompts: number[]; outputs: number[] }

/** Default worker count: all cores, at most 4 (beyond that reading/writing on the main thread dominates). */
export function defaultThreads(): number {
  return Math.min(4, availableParallelism());
}

function spawn(spec: string, hub: HubOptions): Worker {
  const here = import.meta.url;
  if (here.endsWith(".ts")) {
    // Development (tsx): worker threads do not inherit tsx's loader hooks, so register them first.
    const tsx = import.meta.resolve("tsx/esm/api");
    const target = new URL("./count-worker.ts", here).href;
    const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(target)}); })`;
    return new Worker(code, { eval: true, workerData: { spec, hub } });
  }
  return new Worker(new URL("./count-worker.js", here), { workerData: { spec, hub } });
}

export class CountPool {
  private next = 0;
  private rr = 0;
  private pending = new Map<number, { resolve: (r: CountResponse) => void; reject: (e: Error) => void }>();
  private failed: Error | undefined;

  private constructor(private readonly workers: Worker[]) {
    for (const w of workers) {
      w.on("message", (m: CountResponse) => {
        const p = this.pending.get(m.id);
        if (p) { this.pending.delete(m.id); p.resolve(m); }
      });
      w.on("error", (e) => this.fail(e));
      w.on("exit", (code) => { if (code !== 0) this.fail(new Error(`token-count worker exited with code ${code}`)); });
    }
  }

  static async create(spec: string, threads: number, hub: HubOptions = {}): Promise<CountPool> {
    const workers = Array.from({ length: threads }, () => spawn(spec, hub));
    try {
      await Promise.all(workers.map((w) => new Promise<void>((resolve, reject) => {
        const onMsg = (m: { ready?: boolean; error?: string }) => {
          w.off("message", onMsg);
          if (m.ready) resolve();
          else reject(new LenpredError(m.error ?? "token-count worker failed to start"));
        };
        w.on("message", onMsg);
        w.once("error", reject);
      })));
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    return new CountPool(workers);
  }

  /** Count a batch; `outputs[i] === null` means "no text to count" (answer length given) and yields -1. */
  count(prompts: string[], outputs: Array<string | null>, special: boolean): Promise<CountResponse> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.next++;
    const w = this.workers[this.rr++ % this.workers.length]!;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, special, prompts, outputs } satisfies CountRequest);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}
