/**
 * The lifecycle `lenpred serve` and `lenpred proxy` share: listen (a busy port is one clear error, exit 2), then
 * drain on SIGTERM/SIGINT — a second signal exits at once, a drain longer than the shutdown timeout exits 1 — or
 * on a fatal error of the server itself (drain, then exit 1, so that a supervisor restarts it).
 * Everything is logged through the app's pino logger, so stdout stays JSON lines only.
 */
import type { FastifyInstance, FastifyListenOptions } from "fastify";
import { LenpredError } from "../util/errors.js";

/** Listen, or close the app and explain why not (`cannot listen on host:port (EADDRINUSE)`). */
export async function listenOrExplain(app: FastifyInstance, opts: FastifyListenOptions & { host: string; port: number }): Promise<string> {
  try {
    return await app.listen(opts);
  } catch (e) {
    await app.close();
    const code = (e as NodeJS.ErrnoException).code;
    throw new LenpredError(`cannot listen on ${opts.host}:${opts.port} (${code ?? (e as Error).message})`);
  }
}

/**
 * Resolves with the exit code once a signal has drained the app: 0 when `app.close()` finished, 1 when it failed
 * or when the drain was started by `fatal` (the server cannot serve any more, e.g. its predictor worker died).
 * `pending()` adds fields to the "draining" line (e.g. queued and in-flight counts).
 */
export function drainOnSignals(app: FastifyInstance, shutdownTimeoutS: number, pending: () => Record<string, unknown> = () => ({}), fatal?: Promise<Error>): Promise<number> {
  const log = app.log;
  return new Promise<number>((resolve) => {
    let stopping = false;
    let failed = false;
    const stop = (signal: string) => {
      if (stopping) {
        log.error({ signal }, "second signal: exiting without draining");
        process.exit(1);
      }
      stopping = true;
      log.info({ signal, ...pending() }, "draining in-flight requests");
      const timer = setTimeout(() => {
        log.error({ shutdownTimeoutS }, "requests still in flight after the shutdown timeout: exiting");
        process.exit(1);
      }, shutdownTimeoutS * 1000);
      timer.unref();
      app.close().then(() => {
        clearTimeout(timer);
        log.info("stopped");
        resolve(failed ? 1 : 0);
      }, (err: unknown) => {
        clearTimeout(timer);
        log.error({ err }, "closing failed");
        resolve(1);
      });
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    void fatal?.then((err) => {
      if (stopping) return;
      failed = true;
      log.error({ err }, "cannot serve any more: draining, then exiting 1 for a supervisor to restart the server");
      stop("fatal");
    });
  });
}
