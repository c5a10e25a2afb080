/**
 * Live quality per target over a sliding window of the last observations, each scored against the prediction
 * made *before* it was learned (prequential): MAE, coverage of reserveTokens, Kendall τ-b, and a drift flag
 * when live MAE exceeds the base model's validation MAE by a margin. Plain data, for /metrics and replay.
 */
import { kendallTauB } from "../metrics/kendall.js";
import { Ring } from "./ring.js";

export interface LiveStats {
  model: string;
  /** Observations learned in total. */
  observations: number;
  /** Observations in the window the numbers below are over. */
  window: number;
  mae: number;
  /** Fraction of observations whose length was ≤ the reserveTokens predicted for them. */
  coverage: number;
  kendallTau: number;
  /** Same window, base model alone (what learning buys). */
  baseMae: number;
  baseCoverage: number;
  /** Live MAE > (1 + margin) × validation MAE (only with ≥ minForDrift observations and a validation MAE). */
  drift: boolean;
  /** Learned correction: multiplicative scale and slope in log space. */
  scale: number;
  slope: number;
}

export interface StatsState { expected: number[]; actual: number[]; reserve: number[]; baseExpected: number[]; baseReserve: number[] }

export class WindowStats {
  expected: Ring;
  actual: Ring;
  reserve: Ring;
  baseExpected: Ring;
  baseReserve: Ring;
  constructor(readonly capacity: number) {
    this.expected = new Ring(capacity);
    this.actual = new Ring(capacity);
    this.reserve = new Ring(capacity);
    this.baseExpected = new Ring(capacity);
    this.baseReserve = new Ring(capacity);
  }

  push(expected: number, actual: number, reserve: number, baseExpected: number, baseReserve: number): void {
    this.expected.push(expected);
    this.actual.push(actual);
    this.reserve.push(reserve);
    this.baseExpected.push(baseExpected);
    this.baseReserve.push(baseReserve);
  }

  summary(): { window: number; mae: number; coverage: number; kendallTau: number; baseMae: number; baseCoverage: number } {
    const e = this.expected.values(), a = this.actual.values(), r = this.reserve.values();
    const be = this.baseExpected.values(), br = this.baseReserve.values();
    const n = a.length;
    let ae = 0, cov = 0, bae = 0, bcov = 0;
    for (let i = 0; i < n; i++) {
      ae += Math.abs(e[i]! - a[i]!);
      bae += Math.abs(be[i]! - a[i]!);
      if (a[i]! <= r[i]!) cov++;
      if (a[i]! <= br[i]!) bcov++;
    }
    return { window: n, mae: n ? ae / n : NaN, coverage: n ? cov / n : NaN, kendallTau: kendallTauB(e, a), baseMae: n ? bae / n : NaN, baseCoverage: n ? bcov / n : NaN };
  }

  toJSON(): StatsState {
    return { expected: this.expected.toJSON(), actual: this.actual.toJSON(), reserve: this.reserve.toJSON(), baseExpected: this.baseExpected.toJSON(), baseReserve: this.baseReserve.toJSON() };
  }

  static restore(s: StatsState, capacity: number): WindowStats {
    const w = new WindowStats(capacity);
    w.expected = Ring.from(capacity, s.expected);
    w.actual = Ring.from(capacity, s.actual);
    w.reserve = Ring.from(capacity, s.reserve);
    w.baseExpected = Ring.from(capacity, s.baseExpected ?? s.expected);
    w.baseReserve = Ring.from(capacity, s.baseReserve ?? s.reserve);
    return w;
  }
}
