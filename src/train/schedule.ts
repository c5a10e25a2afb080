/**
 * Learning-rate schedule: linear warmup from 0, then linear decay to 0 at the last step — HF Trainer's default
 * (`get_linear_schedule_with_warmup`), evaluated at the 0-based index of the step about to be taken.
 */
export function linearScheduleLr(baseLr: number, step: number, warmup: number, totalSteps: number): number {
  if (step < warmup) return (baseLr * step) / Math.max(1, warmup);
  return baseLr * Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmup));
}
