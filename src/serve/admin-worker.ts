/**
 * The admin listener's worker thread (started by admin-thread.ts): a bare node:http server that answers
 * GET /healthz, /readyz and /metrics from what the main thread shares, never waiting on the main event loop.
 * - /healthz: 200 while the main thread's heartbeat (ms since epoch, written every 100 ms into a
 *   SharedArrayBuffer) is younger than `stallMs`; 503 with the stall age otherwise (a blocked or hung loop).
 * - /readyz: the server status the main thread mirrors into the same buffer.
 * - /metrics: the last Prometheus text the main thread posted (it publishes every second).
 * Errors use serve's body, `{error: {message, field}}`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { parentPort, workerData } from "node:worker_threads";
import { ADMIN_STATUSES, HEARTBEAT_INDEX, STATUS_INDEX, type AdminInit, type AdminToWorker, type AdminToMain } from "./admin-protocol.js";

const init = workerData as AdminInit;
const slots = new BigInt64Array(init.shared);
let metrics: { text: string; contentType: string } | undefined;

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
  res.end(JSON.stringify(body));
}
const error = (res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}) =>
  json(res, status, { error: { message, field: null } }, headers);

function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? "/").split("?")[0]!;
  if (path !== "/healthz" && path !== "/readyz" && path !== "/metrics") return error(res, 404, `no route ${req.method} ${path}`);
  if (req.method !== "GET" && req.method !== "HEAD") {
    return error(res, 405, `method ${req.method} not allowed on ${path} (use GET or HEAD)`, { allow: "GET, HEAD" });
  }
  if (path === "/healthz") {
    const age = Date.now() - Number(Atomics.load(slots, HEARTBEAT_INDEX));
    if (age < init.stallMs) return json(res, 200, { status: "ok" });
    return error(res, 503, `main event loop stalled: no heartbeat for ${age} ms (threshold ${init.stallMs} ms)`, { "retry-after": "1" });
  }
  if (path === "/readyz") {
    const status = ADMIN_STATUSES[Number(Atomics.load(slots, STATUS_INDEX))] ?? "loading";
    return json(res, status === "ready" ? 200 : 503, { status }, status === "ready" ? {} : { "retry-after": "1" });
  }
  if (!metrics) return error(res, 503, "metrics not published yet", { "retry-after": "1" });
  res.writeHead(200, { "content-type": metrics.contentType });
  res.end(metrics.text);
}

const server = createServer(handle);
server.on("clientError", (_err, socket) => {
  if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\ncontent-type: application/json; charset=utf-8\r\nconnection: close\r\n\r\n{"error":{"message":"malformed HTTP request","field":null}}');
  else socket.destroy();
});
const post = (m: AdminToMain) => parentPort!.postMessage(m);
server.on("error", (e: NodeJS.ErrnoException) => post({ type: "error", message: e.message, code: e.code }));
server.listen({ port: init.port, host: init.host, backlog: init.backlog }, () => {
  const a = server.address();
  post({ type: "listening", port: typeof a === "object" && a ? a.port : init.port });
});
parentPort!.on("message", (m: AdminToWorker) => {
  if (m.type === "metrics") metrics = { text: m.text, contentType: m.contentType };
  else if (m.type === "close") {
    server.closeAllConnections();
    server.close(() => parentPort!.close());
  }
});
