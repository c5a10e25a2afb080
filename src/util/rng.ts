/**
 * Seeded, serialisable randomness (seedrandom's alea). Serialisable state is what lets `train --resume`
 * continue a run exactly.
 */
import seedrandom from "seedrandom";

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [0, n). */
  int(n: number): number;
  /** Opaque state for checkpoints. */
  state(): object;
}

export function createRng(seed: number | string, state?: object): Rng {
  const prng = state
    ? seedrandom.alea("", { state: state as seedrandom.State.Alea })
    : seedrandom.alea(String(seed), { state: true });
  return {
    next: () => prng(),
    int: (n: number) => Math.floor(prng() * n),
    state: () => prng.state(),
  };
}

/** Fisher–Yates shuffle in place. */
export function shuffleInPlace<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
  return items;
}
