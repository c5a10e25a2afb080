/** What the main thread and the admin worker (admin-thread.ts ↔ admin-worker.ts) share: buffer layout and messages. */
import type { ServeStatus } from "./context.js";

/** Slots of the shared BigInt64Array: the main loop's last heartbeat (Date.now() ms) and its status index. */
export const HEARTBEAT_INDEX = 0;
export const STATUS_INDEX = 1;
export const ADMIN_STATUSES: readonly ServeStatus[] = ["loading", "ready", "failed", "closing"];

export interface AdminInit {
  shared: SharedArrayBuffer;
  port: number;
  host: string;
  backlog?: number;
  stallMs: number;
}
export type AdminToWorker = { type: "metrics"; text: string; contentType: string } | { type: "close" };
export type AdminToMain = { type: "listening"; port: number } | { type: "error"; message: string; code?: string };
