/**
 * KV-cache mechanisms the scheduler loop allocates from (the "how memory is handed out" half of a policy;
 * the policy in policies.ts decides order and how much). Both count in tokens:
 *
 * - `ReservationPool`: a sequence holds an exact token reservation made at admission (S³, oracle,
 *   max-length); it never grows in place; a sequence that outgrows it is preempted by the loop.
 * - `PagedPool`: vLLM-like blocks of `blockSize` tokens allocated on demand, with a 1 % watermark kept free
 *   at admission; a running sequence takes one more block when it needs one.
 */
export interface KvPool {
  readonly kind: "reservation" | "paged";
  /** Usable tokens (whole blocks for paged). */
  readonly capacity: number;
  /** Tokens not held by any sequence. */
  free: number;
  /** Tokens to hold for a sequence that needs `tokens` now (rounded up to whole blocks for paged). */
  round(tokens: number): number;
  /** Whether a request needing `need` (already rounded) tokens may be admitted with `running` sequences running. */
  canAdmit(need: number, running: number): boolean;
  /** Allocation unit a running sequence grows by (paged only). */
  readonly unit: number;
}

export class ReservationPool implements KvPool {
  readonly kind = "reservation";
  readonly unit = 0;
  free: number;
  constructor(readonly capacity: number) { this.free = capacity; }
  round(tokens: number): number { return tokens; }
  canAdmit(need: number): boolean { return need <= this.free; }
}

export class PagedPool implements KvPool {
  readonly kind = "paged";
  readonly capacity: number;
  free: number;
  /** Blocks kept free at admission (vLLM's 1 % watermark) so running sequences can grow. */
  private readonly watermark: number;
  constructor(capacityTokens: number, readonly unit: number) {
    const blocks = Math.floor(capacityTokens / unit);
    this.capacity = blocks * unit;
    this.watermark = Math.floor(blocks * 0.01);
    this.free = this.capacity;
  }
  round(tokens: number): number { return Math.ceil(tokens / this.unit) * this.unit; }
  canAdmit(need: number, running: number): boolean {
    return this.free - need >= this.watermark * this.unit || (running === 0 && need <= this.free);
  }
}
