/**
 * Waiting queues. A policy pops candidates in priority order and may hand back the ones that did not fit
 * (`unpop`), which must restore exactly the previous order. Preempted requests go to a separate FIFO
 * that is served before new requests (vLLM and the S³ supervisor both re-queue at the front).
 */

export interface WaitQueue {
  readonly size: number;
  push(i: number): void;
  pop(): number;
  /** Return popped items (in their pop order) to the queue. */
  unpop(items: number[]): void;
}

/** First come, first served. */
export class FifoQueue implements WaitQueue {
  private items: number[] = [];
  private head = 0;
  get size(): number { return this.items.length - this.head; }
  push(i: number): void { this.items.push(i); }
  pop(): number {
    const v = this.items[this.head++]!;
    // Compact now and then so a long run does not keep every request ever queued.
    if (this.head > 4096 && this.head * 2 > this.items.length) { this.items = this.items.slice(this.head); this.head = 0; }
    return v;
  }
  unpop(items: number[]): void {
    if (items.length === 0) return;
    if (this.head >= items.length) {
      this.head -= items.length;
      for (let k = 0; k < items.length; k++) this.items[this.head + k] = items[k]!;
    } else {
      this.items = [...items, ...this.items.slice(this.head)];
      this.head = 0;
    }
  }
}

/** Smallest key first, ties by request index (= arrival order): shortest-predicted-first. */
export class KeyedQueue implements WaitQueue {
  private heap: number[] = [];
  constructor(private readonly key: ArrayLike<number>) {}
  get size(): number { return this.heap.length; }
  private less(a: number, b: number): boolean {
    const ka = this.key[a]!, kb = this.key[b]!;
    return ka < kb || (ka === kb && a < b);
  }
  push(i: number): void {
    const h = this.heap;
    h.push(i);
    let c = h.length - 1;
    while (c > 0) {
      const p = (c - 1) >> 1;
      if (!this.less(h[c]!, h[p]!)) break;
      [h[c], h[p]] = [h[p]!, h[c]!];
      c = p;
    }
  }
  pop(): number {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let p = 0;
      for (;;) {
        const l = 2 * p + 1, r = l + 1;
        let m = p;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === p) break;
        [h[m], h[p]] = [h[p]!, h[m]!];
        p = m;
      }
    }
    return top;
  }
  unpop(items: number[]): void { for (const i of items) this.push(i); }
}
