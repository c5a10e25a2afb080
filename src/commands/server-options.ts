/**
 * The command-line options `lenpred serve` and `lenpred proxy` share — where they listen, the request limits,
 * shutdown, logging — stated once, so both servers take the same flags with the same meaning and checks.
 */
import { Option, type Command } from "commander";
import { numberOption } from "../util/number-option.js";
import { DEFAULT_LIMITS } from "../serve/limits.js";

export interface ServerCliOptions {
  host: string;
  port: number;
  backlog: number;
  bodyLimit: number;
  maxPrompts: number;
  maxPromptChars: number;
  maxMessages: number;
  shutdownTimeout: number;
  logLevel: string;
}

export interface ServerOptionDefaults {
  port: number;
  /** Seconds a drain may take before the process exits 1. */
  shutdownTimeout: number;
  /** What is being drained (the --shutdown-timeout help). */
  drains: string;
  /** What stdout carries (the --log-level help). */
  logs: string;
  /** What a "prompt" is in this server's requests (the --max-prompts help). */
  promptsPerRequest: string;
}

export function addServerOptions(cmd: Command, d: ServerOptionDefaults): Command {
  return cmd
    .option("--host <addr>", "address to listen on (0.0.0.0 for all interfaces)", "127.0.0.1")
    .option("--port <n>", "TCP port (0 = any free port, printed at start)", numberOption("--port", { int: true, min: 0 }), d.port)
    .option("--backlog <n>", "pending-connection queue of the listening socket (capped by the kernel's net.core.somaxconn): a burst larger than it has its SYNs dropped and retried after 1 s, health probes included", numberOption("--backlog", { int: true, min: 1 }), 8192)
    .option("--body-limit <bytes>", "largest request body (413 beyond)", numberOption("--body-limit", { int: true, min: 1 }), DEFAULT_LIMITS.bodyBytes)
    .option("--max-prompts <n>", `most prompts ${d.promptsPerRequest}`, numberOption("--max-prompts", { int: true, min: 1 }), DEFAULT_LIMITS.maxPrompts)
    .option("--max-prompt-chars <n>", "longest prompt / message content, in characters", numberOption("--max-prompt-chars", { int: true, min: 1 }), DEFAULT_LIMITS.maxPromptChars)
    .option("--max-messages <n>", "most messages in a chat body", numberOption("--max-messages", { int: true, min: 1 }), DEFAULT_LIMITS.maxMessages)
    .option("--shutdown-timeout <s>", `on SIGTERM, give ${d.drains} this long before exiting 1`, numberOption("--shutdown-timeout", { min: 0 }), d.shutdownTimeout)
    .addOption(new Option("--log-level <level>", `log level; ${d.logs}`).choices(["fatal", "error", "warn", "info", "debug"]).default("info"));
}
