/** A fixed-capacity ring of numbers: per-target memory never grows with traffic. */
export class Ring {
  readonly a: Float64Array;
  private head = 0;
  size = 0;
  constructor(readonly capacity: number) {
    this.a = new Float64Array(capacity);
  }
  push(v: number): void {
    this.a[this.head] = v;
    this.head = (this.head + 1) % this.capacity;
    if (this.size < this.capacity) this.size++;
  }
  /** Values oldest first. */
  values(): Float64Array {
    const out = new Float64Array(this.size);
    const start = (this.head - this.size + this.capacity) % this.capacity;
    for (let i = 0; i < this.size; i++) out[i] = this.a[(start + i) % this.capacity]!;
    return out;
  }
  toJSON(): number[] {
    return Array.from(this.values());
  }
  static from(capacity: number, values: ArrayLike<number>): Ring {
    const r = new Ring(capacity);
    const n = values.length;
    for (let i = Math.max(0, n - capacity); i < n; i++) r.push(Number(values[i]));
    return r;
  }
}

/** Linear-interpolated quantile of sorted values (type 7). */
export function quantileSorted(s: ArrayLike<number>, q: number): number {
  const n = s.length;
  if (n === 0) return NaN;
  const h = (n - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return s[lo]! + (h - lo) * (s[hi]! - s[lo]!);
}
