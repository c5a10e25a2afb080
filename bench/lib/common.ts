/** Small pieces every benchmark script uses: statistics, rounding, synthetic prompts, the main wrapper. */

/** Upper median (the middle element, or the upper of the two middles). */
export function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** Deterministic [CLS]-led token ids and an all-ones mask, row-major [batch, seq]. */
export function syntheticIds(batch: number, seq: number, vocab: number): { ids: BigInt64Array; mask: BigInt64Array } {
  const ids = new BigInt64Array(batch * seq);
  for (let i = 0; i < ids.length; i++) ids[i] = BigInt(i % seq === 0 ? 101 : 1000 + ((i * 7919) % (vocab - 1000)));
  return { ids, mask: new BigInt64Array(batch * seq).fill(1n) };
}

/** Run a benchmark's main; print the error and exit 1 on failure. */
export function runMain(main: () => Promise<void>): void {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
