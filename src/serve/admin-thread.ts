/**
 * `startAdmin(options)`: the opt-in admin listener (`lenpred serve --admin-port`). Its HTTP server runs in a
 * worker thread (admin-worker.ts), so liveness, readiness and metrics probes are accepted and answered even
 * while the main event loop is saturated by a connection burst or blocked. The main thread feeds it:
 * a heartbeat (Date.now()) and the server status into a SharedArrayBuffer every 100 ms via Atomics, and the
 * Prometheus text every second via postMessage. /healthz turns 503 once the heartbeat is older than `stallMs`.
 */
import { Worker } from "node:worker_threads";
import type { ServeStatus } from "./context.js";
import { ADMIN_STATUSES, HEARTBEAT_INDEX, STATUS_INDEX, type AdminInit, type AdminToMain, type AdminToWorker } from "./admin-protocol.js";

export const DEFAULT_LIVENESS_STALL_MS = 10_000;
const HEARTBEAT_MS = 100;
const METRICS_MS = 1000;

export interface AdminOptions {
  port: number;
  host: string;
  backlog?: number;
  /** /healthz answers 503 once the main loop's heartbeat is this old, ms. */
  stallMs?: number;
  status: () => ServeStatus;
  metrics: () => Promise<{ text: string; contentType: string }>;
}

export interface AdminListener {
  /** The port the admin server listens on (the real one when started with port 0). */
  readonly port: number;
  /** Publish the status now (e.g. "closing" at once, not on the next heartbeat). */
  beat(): void;
  close(): Promise<void>;
}

/** Like WorkerPredictor's: the built .js, or from source (tsx, vitest) the .ts module after registering tsx in the worker. */
function createWorker(init: AdminInit): Worker {
  if (!import.meta.url.endsWith(".ts")) return new Worker(new URL("./admin-worker.js", import.meta.url), { workerData: init });
  const entry = new URL("./admin-worker.ts", import.meta.url).href;
  const boot = `import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true, workerData: init });
}

export async function startAdmin(opts: AdminOptions): Promise<AdminListener> {
  const stallMs = opts.stallMs ?? DEFAULT_LIVENESS_STALL_MS;
  if (!(stallMs > 0)) throw new RangeError(`livenessStallMs must be > 0, got ${stallMs}`);
  const shared = new SharedArrayBuffer(2 * BigInt64Array.BYTES_PER_ELEMENT);
  const slots = new BigInt64Array(shared);
  const beat = () => {
    Atomics.store(slots, HEARTBEAT_INDEX, BigInt(Date.now()));
    Atomics.store(slots, STATUS_INDEX, BigInt(Math.max(0, ADMIN_STATUSES.indexOf(opts.status()))));
  };
  beat();
  const worker = createWorker({ shared, port: opts.port, host: opts.host, stallMs, ...(opts.backlog !== undefined ? { backlog: opts.backlog } : {}) });
  const send = (m: AdminToWorker) => worker.postMessage(m);
  let closed = false;
  const publish = async () => {
    try {
      const m = await opts.metrics();
      if (!closed) send({ type: "metrics", ...m });
    } catch {
      // A failing collector leaves the last published text in place; the main /metrics reports the error.
    }
  };
  const port = await new Promise<number>((resolve, reject) => {
    const onExit = (code: number) => reject(new Error(`admin listener worker exited (code ${code}) before listening`));
    worker.once("error", reject);
    worker.once("exit", onExit);
    worker.on("message", function onMessage(m: AdminToMain) {
      worker.off("message", onMessage);
      worker.off("error", reject);
      worker.off("exit", onExit);
      if (m.type === "listening") resolve(m.port);
      else reject(new RangeError(`admin port ${opts.host}:${opts.port}: ${m.message}`));
    });
  }).catch(async (e: unknown) => {
    await worker.terminate();
    throw e;
  });
  // unref: the admin listener never keeps the process alive on its own; the app's close() stops it.
  const heart = setInterval(beat, HEARTBEAT_MS).unref();
  const metricsTimer = setInterval(() => void publish(), METRICS_MS).unref();
  await publish();
  worker.unref();
  return {
    port,
    beat,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(heart);
      clearInterval(metricsTimer);
      const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
      send({ type: "close" });
      // A worker that does not close its server in time is terminated.
      const timer = setTimeout(() => void worker.terminate(), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}
