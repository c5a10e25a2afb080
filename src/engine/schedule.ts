/** Learning-rate schedules (pure functions of the step: no onnxruntime, so the training loop can import them freely). */

/**
 * Linear warmup then linear decay to 0, as HF `get_linear_schedule_with_warmup`: the lr of optimizer step
 * `step` (0-based) is peak·step/warmup during warmup, then peak·(total − step)/(total − warmup).
 */
export function linearWarmupDecay(o: { peakLr: number; warmupSteps: number; totalSteps: number }): (step: number) => number {
  return (step) => {
    if (step < o.warmupSteps) return (o.peakLr * step) / Math.max(1, o.warmupSteps);
    return o.peakLr * Math.max(0, (o.totalSteps - step) / Math.max(1, o.totalSteps - o.warmupSteps));
  };
}
