/**
 * Kendall's τ-b in O(n log n) (Knight 1966): sort by (x, y), count ties, then count discordant pairs as
 * the number of swaps a merge sort on y needs. τ-b = (n0 − n1 − n2 + n3 − 2·swaps) / √((n0 − n1)(n0 − n2)),
 * with n0 = n(n−1)/2, n1 / n2 = pairs tied in x / y, n3 = pairs tied in both.
 * Returns NaN when either variable is constant (τ-b is undefined there, as in scipy).
 */
export function kendallTauB(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  if (y.length !== n) throw new Error(`kendallTauB: length mismatch ${n} vs ${y.length}`);
  if (n < 2) return NaN;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => x[a]! - x[b]! || y[a]! - y[b]!);
  let ys = Float64Array.from(order, (i) => y[i]!);
  const xs = Float64Array.from(order, (i) => x[i]!);

  const n0 = (n * (n - 1)) / 2;
  let n1 = 0; // tied in x
  let n3 = 0; // tied in x and y
  for (let i = 0; i < n;) {
    let j = i + 1;
    while (j < n && xs[j] === xs[i]) j++;
    const t = j - i;
    n1 += (t * (t - 1)) / 2;
    // within an x-tie group y is sorted, so joint ties are consecutive runs
    for (let k = i; k < j;) {
      let m = k + 1;
      while (m < j && ys[m] === ys[k]) m++;
      const u = m - k;
      n3 += (u * (u - 1)) / 2;
      k = m;
    }
    i = j;
  }

  // Bottom-up merge sort on y counting inversions (strictly greater elements moved past).
  let buf = new Float64Array(n);
  let swaps = 0;
  for (let width = 1; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let i = lo, j = mid, k = lo;
      while (i < mid && j < hi) {
        if (ys[j]! < ys[i]!) {
          swaps += mid - i;
          buf[k++] = ys[j++]!;
        } else {
          buf[k++] = ys[i++]!;
        }
      }
      while (i < mid) buf[k++] = ys[i++]!;
      while (j < hi) buf[k++] = ys[j++]!;
    }
    [ys, buf] = [buf, ys];
  }

  let n2 = 0; // tied in y (ys is now sorted)
  for (let i = 0; i < n;) {
    let j = i + 1;
    while (j < n && ys[j] === ys[i]) j++;
    const t = j - i;
    n2 += (t * (t - 1)) / 2;
    i = j;
  }
  const denom = Math.sqrt((n0 - n1) * (n0 - n2));
  if (denom === 0) return NaN;
  return (n0 - n1 - n2 + n3 - 2 * swaps) / denom;
}
