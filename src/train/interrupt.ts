/**
 * Ctrl-C handling for long runs: the first SIGINT/SIGTERM asks the loop to stop after the current step and
 * write a resumable checkpoint; a second one exits at once (still safe: saves are atomic directory swaps).
 */
export function interruptSignal(onFirst?: () => void): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const handler = () => {
    if (ac.signal.aborted) process.exit(130);
    onFirst?.();
    ac.abort();
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return {
    signal: ac.signal,
    dispose() {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
    },
  };
}
