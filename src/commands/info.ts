/** `lenpred info`: versions and runtime facts useful in bug reports. */
import type { Command } from "commander";
import os from "node:os";

export function register(program: Command): void {
  program
    .command("info")
    .description("print versions and machine facts (for bug reports)")
    .action(async () => {
      const ort = await import("onnxruntime-node");
      console.log(JSON.stringify({
        node: process.version,
        onnxruntime: ort.env.versions,
        cpus: os.cpus().length,
        cpu: os.cpus()[0]?.model,
        memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      }, null, 2));
    });
}
