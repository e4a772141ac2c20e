/**
 * Per-block maxRel histogram with one bin per decade. Exact zeros and non-finite
 * values have no logarithm, so they get their own bins at either end.
 */

export interface DecadeBin {
  /** The bin holds values in [10^exponent, 10^(exponent+1)). */
  exponent: number;
  count: number;
}

export interface ErrorHistogram {
  zeros: number;
  bins: DecadeBin[];
  nonFinite: number;
  /** The largest count of any bin (including zeros and non-finite), for scaling bars. */
  maxCount: number;
}

/** floor(log10(v)) for v > 0, corrected where Math.log10 rounds across a power of ten. */
export function decadeOf(v: number): number {
  let k = Math.floor(Math.log10(v));
  if (10 ** (k + 1) <= v) k++;
  else if (10 ** k > v) k--;
  return k;
}

/** Empty decades between the smallest and largest value are kept, so the x axis stays uniform. */
export function errorHistogram(values: readonly number[]): ErrorHistogram {
  let zeros = 0;
  let nonFinite = 0;
  const counts = new Map<number, number>();
  for (const v of values) {
    if (!Number.isFinite(v)) nonFinite++;
    else if (v <= 0) zeros++;
    else {
      const k = decadeOf(v);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
  }
  const bins: DecadeBin[] = [];
  if (counts.size) {
    const lo = Math.min(...counts.keys());
    const hi = Math.max(...counts.keys());
    for (let k = lo; k <= hi; k++) bins.push({ exponent: k, count: counts.get(k) ?? 0 });
  }
  const maxCount = Math.max(zeros, nonFinite, ...bins.map((b) => b.count));
  return { zeros, bins, nonFinite, maxCount };
}

export function decadeLabel(exponent: number): string {
  return `1e${exponent}`;
}
