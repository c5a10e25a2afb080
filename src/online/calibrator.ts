/**
 * Per-target calibration of a base length predictor, in log space (length errors are multiplicative).
 *
 * Keeps the last `window` pairs (x = log1p(base expectedTokens), y = log1p(observed output_tokens)) and fits
 *   y ≈ x + a + c·(x − x̄)
 * with c a ridge-shrunk slope (prior: the base ranks right, c = 0) and a the median of the remaining residual
 * (median: the point estimate that minimises mean |error|), shrunk toward 0 by one pseudo-observation. A scale
 * factor s on the target's lengths is learned after a handful of observations (a → log s).
 *
 * Point estimate (`pointLog`): the same fit, with the offset taken as the median residual of the most recent h
 * observations instead of the whole window, h chosen among window, window/2, … ≥ √window by the prequential
 * absolute log error each horizon's offset had over the window (follow the leader; ties go to the longest). An
 * LLM's answer lengths drift with the mix of requests (FLASK in file order moves between task groups whose
 * lengths differ by 2–4×); a window-long median lags such a drift by hundreds of observations, a short one is
 * noisier when there is none — the running errors say which holds for this target, with no rate to tune.
 * Reservations and the bucket distribution keep the whole window's offset and residuals (their coverage is
 * the conformal/ACI guarantee; a drift is what ACI corrects).
 *
 * Reservations: split-conformal on the same window — the q-quantile of the signed log residuals of the
 * current fit — with adaptive conformal inference (Gibbs & Candès 2021) per requested level: after each
 * observation α_t ← α_t + γ(α − err_t), err_t = 1 when the reservation made *before* seeing it was exceeded,
 * so that long-run miscoverage tracks α even when the target drifts.
 */
import { quantileSorted, Ring } from "./ring.js";

export interface CalibratorOptions {
  /** Observations kept per target (memory bound and adaptation horizon). */
  window: number;
  /** Ridge strength on the slope correction, in units of Σ(x − x̄)². */
  slopeRidge: number;
  /** ACI step size γ. */
  gamma: number;
  /** Levels with their own ACI state per target (beyond this, plain conformal at the requested level). */
  maxLevels: number;
}

export const DEFAULT_CALIBRATOR: CalibratorOptions = { window: 1000, slopeRidge: 8, gamma: 0.01, maxLevels: 8 };

interface Fit {
  a: number;
  c: number;
  xbar: number;
  /** Sorted signed residuals y − f(x) of the window under this fit. */
  scores: Float64Array;
  /** Offset of each horizon (`horizons()` order): the shrunk median residual of its most recent observations. */
  offsets: number[];
  /** Offset of the point estimate: that of the horizon with the least running error. */
  point: number;
}

/** Offset horizons for a window: window, window/2, … down to √window (the shortest with a usable median). */
function horizons(window: number): number[] {
  const out: number[] = [];
  for (let h = window; h >= Math.sqrt(window) && h >= 1; h = Math.floor(h / 2)) out.push(h);
  return out;
}

export interface CalibratorState {
  n: number;
  xs: number[];
  ys: number[];
  aci: [number, number][];
  /** Per horizon, the prequential absolute log errors of its offset (optional: older snapshots lack it). */
  horizonErrors?: number[][];
}

export class Calibrator {
  private xs: Ring;
  private ys: Ring;
  /** Observations seen in total (not only those in the window). */
  n = 0;
  private fit: Fit | undefined;
  /** ACI: requested level q → current working miscoverage α_t. */
  private aci = new Map<number, number>();
  /** Per offset horizon, |y − its point| in log1p for each observation, scored before learning it (same window as the pairs). */
  private herr: Ring[];

  constructor(readonly opts: CalibratorOptions = DEFAULT_CALIBRATOR) {
    this.xs = new Ring(opts.window);
    this.ys = new Ring(opts.window);
    this.herr = horizons(opts.window).map(() => new Ring(opts.window));
  }

  get size(): number {
    return this.xs.size;
  }

  /** Calibrated log1p length for a base log1p prediction x: the whole window's fit (reservations, distribution). */
  center(x: number): number {
    const f = this.current();
    return x + f.a + f.c * (x - f.xbar);
  }

  /** Point estimate in log1p length (a median: the MAE-optimal point), with the offset of the best horizon. */
  pointLog(x: number): number {
    const f = this.current();
    return x + f.point + f.c * (x - f.xbar);
  }

  /**
   * Reservation in log1p space at level q, for base log1p prediction x; `fallback` is used before any
   * observation (the base model's own q-reservation, in log1p tokens).
   */
  reserveLog(x: number, q: number, fallback: number): number {
    return this.reserveLogAt(x, fallback, this.alphaFor(q));
  }

  private reserveLogAt(x: number, fallback: number, alpha: number): number {
    const f = this.current();
    const m = f.scores.length;
    if (m === 0) return fallback;
    const level = 1 - alpha;
    let s: number;
    // Finite-sample conformal quantile: rank ⌈(m + 1)·level⌉ of m; beyond the largest score, widen past it.
    const rank = Math.ceil((m + 1) * level);
    if (level >= 1 || rank > m) s = f.scores[m - 1]! + 0.25;
    else if (level <= 0) s = f.scores[0]!;
    else s = quantileSorted(f.scores, Math.max(0, (rank - 1) / Math.max(1, m - 1)));
    return this.center(x) + s;
  }

  /** Empirical distribution of log1p lengths for x: center + each window residual (for bucket probabilities). */
  samplesLog(x: number): Float64Array {
    const f = this.current();
    const c = this.center(x);
    return f.scores.map((s) => c + s);
  }

  /** Learn from one observation (x = base log1p prediction, y = observed log1p length). */
  observe(x: number, y: number, levels: number[] = []): void {
    this.observeBatch([x], [y], levels);
  }

  /**
   * Learn a batch of observations that arrived together: each is scored (ACI) against the state before the
   * batch, then all are added, so the fit is recomputed once per batch rather than once per observation.
   */
  observeBatch(xs: ArrayLike<number>, ys: ArrayLike<number>, levels: number[] = []): void {
    for (const q of new Set([...levels, ...this.aci.keys()])) {
      if (!this.aci.has(q) && this.aci.size >= this.opts.maxLevels) continue;
      let a = this.alphaFor(q);
      for (let i = 0; i < xs.length; i++) {
        // Score the reservation this state would have made, before it learns the observation.
        const err = this.size > 0 && ys[i]! > this.reserveLogAt(xs[i]!, Infinity, a) ? 1 : 0;
        // Clamp so a long run of one outcome cannot wind α_t up without bound.
        a = Math.min(1.5, Math.max(-0.5, a + this.opts.gamma * ((1 - q) - err)));
      }
      this.aci.set(q, a);
    }
    if (this.size > 0) {
      // Score each horizon's offset on the batch before it is learned (prequential, like ACI).
      const f = this.current();
      for (let i = 0; i < xs.length; i++) {
        const slope = f.c * (xs[i]! - f.xbar);
        f.offsets.forEach((o, k) => this.herr[k]!.push(Math.abs(ys[i]! - (xs[i]! + o + slope))));
      }
    }
    for (let i = 0; i < xs.length; i++) {
      this.xs.push(xs[i]!);
      this.ys.push(ys[i]!);
      this.n++;
    }
    this.fit = undefined;
  }

  /**
   * The calibrator's input moved by `dx` on average (a member of the base was swapped): move the stored inputs
   * with it, so that the fitted offset keeps meaning the same thing.
   */
  shiftInputs(dx: number): void {
    this.xs = Ring.from(this.opts.window, this.xs.values().map((x) => x + dx));
    this.fit = undefined;
  }

  /** The horizon whose offset had the least running error (ties: the longest). */
  private bestHorizon(): number {
    let best = 0, bestSum = Infinity;
    this.herr.forEach((r, k) => {
      const sum = r.values().reduce((s, v) => s + v, 0);
      if (sum < bestSum) { best = k; bestSum = sum; }
    });
    return best;
  }

  private alphaFor(q: number): number {
    return this.aci.get(q) ?? 1 - q;
  }

  private current(): Fit {
    if (this.fit) return this.fit;
    const xs = this.xs.values(), ys = this.ys.values();
    const m = xs.length;
    let xbar = 0, rbar = 0;
    for (let i = 0; i < m; i++) { xbar += xs[i]!; rbar += ys[i]! - xs[i]!; }
    xbar = m ? xbar / m : 0;
    rbar = m ? rbar / m : 0;
    let sxx = 0, sxr = 0;
    for (let i = 0; i < m; i++) {
      const dx = xs[i]! - xbar;
      sxx += dx * dx;
      sxr += dx * (ys[i]! - xs[i]! - rbar);
    }
    const c = Math.min(1, Math.max(-0.9, sxr / (sxx + this.opts.slopeRidge)));
    const rest = new Float64Array(m);
    for (let i = 0; i < m; i++) rest[i] = ys[i]! - xs[i]! - c * (xs[i]! - xbar);
    // Median shrunk toward 0 by one pseudo-observation.
    const offset = (sorted: Float64Array) => (sorted.length ? (quantileSorted(sorted, 0.5) * sorted.length) / (sorted.length + 1) : 0);
    const offsets = horizons(this.opts.window).map((h) => (h >= m ? NaN : offset(rest.slice(m - h).sort())));
    rest.sort();
    const a = offset(rest);
    for (let k = 0; k < offsets.length; k++) if (Number.isNaN(offsets[k])) offsets[k] = a;
    const scores = rest.map((r) => r - a).sort();
    this.fit = { a, c, xbar, scores, offsets, point: offsets[this.bestHorizon()]! };
    return this.fit;
  }

  /** Fitted correction, for stats: a (log scale offset) and c (slope correction). */
  params(): { scale: number; slope: number } {
    const f = this.current();
    return { scale: Math.exp(f.a), slope: 1 + f.c };
  }

  toJSON(): CalibratorState {
    return { n: this.n, xs: this.xs.toJSON(), ys: this.ys.toJSON(), aci: [...this.aci], horizonErrors: this.herr.map((r) => r.toJSON()) };
  }

  static restore(s: CalibratorState, opts: CalibratorOptions = DEFAULT_CALIBRATOR): Calibrator {
    const c = new Calibrator(opts);
    c.xs = Ring.from(opts.window, s.xs);
    c.ys = Ring.from(opts.window, s.ys);
    c.n = s.n;
    c.aci = new Map(s.aci.slice(0, opts.maxLevels));
    // Errors of the same horizons only (a snapshot taken with another window starts them afresh).
    if (s.horizonErrors?.length === c.herr.length) c.herr = s.horizonErrors.map((e) => Ring.from(opts.window, e));
    return c;
  }
}
