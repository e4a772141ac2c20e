/** Geometry of the small SVG charts, in pixels, kept apart from the DOM so it can be tested. */
import type { Sparkline } from './quantization';
import { decadeLabel, decadeOf, type ErrorHistogram } from './histogram';

/** Bars as two path strings, ordinary and outlier, bottom-aligned in a width × height box. */
export function sparklinePaths(line: Sparkline, width: number, height: number): { normal: string; outlier: string } {
  const count = line.heights.length;
  const normal: string[] = [];
  const outlier: string[] = [];
  if (count === 0) return { normal: '', outlier: '' };
  const step = width / count;
  // A 1px gap separates bars only when they are wide enough to keep a visible body.
  const bar = step >= 3 ? step - 1 : step;
  line.heights.forEach((v, i) => {
    // Even an all-but-zero channel gets a hairline, so "tiny" and "missing" look different.
    const hgt = Math.max(1, v * height);
    const d = `M${(i * step).toFixed(2)} ${(height - hgt).toFixed(2)}h${bar.toFixed(2)}v${hgt.toFixed(2)}h${(-bar).toFixed(2)}Z`;
    (line.outliers[i] ? outlier : normal).push(d);
  });
  return { normal: normal.join(''), outlier: outlier.join('') };
}

export interface HistogramBar {
  label: string;
  count: number;
  x: number;
  width: number;
  /** Bar height in px; 0 for empty bins. */
  height: number;
  /** 'zero' and 'nonfinite' bins sit outside the log axis. */
  kind: 'zero' | 'decade' | 'nonfinite';
}

export interface HistogramLayout {
  bars: HistogramBar[];
  /** x of the rtol marker, when rtol falls within the decades shown. */
  rtolX: number | null;
  width: number;
  plotHeight: number;
}

export const HISTOGRAM_BAR_WIDTH = 40;
const GAP = 6;

export function histogramLayout(hist: ErrorHistogram, rtol: number, plotHeight: number): HistogramLayout {
  const bins: Omit<HistogramBar, 'x' | 'width' | 'height'>[] = [];
  if (hist.zeros) bins.push({ label: '0', count: hist.zeros, kind: 'zero' });
  for (const b of hist.bins) bins.push({ label: decadeLabel(b.exponent), count: b.count, kind: 'decade' });
  if (hist.nonFinite) bins.push({ label: 'NaN/∞', count: hist.nonFinite, kind: 'nonfinite' });
  const bars = bins.map((b, i) => ({
    ...b,
    x: i * (HISTOGRAM_BAR_WIDTH + GAP),
    width: HISTOGRAM_BAR_WIDTH,
    height: hist.maxCount > 0 ? (b.count / hist.maxCount) * plotHeight : 0,
  }));
  let rtolX: number | null = null;
  if (rtol > 0 && hist.bins.length) {
    const first = hist.bins[0].exponent;
    const k = decadeOf(rtol);
    const at = bars.findIndex((b) => b.kind === 'decade' && b.label === decadeLabel(k));
    if (at >= 0) rtolX = bars[at].x + (Math.log10(rtol) - k) * HISTOGRAM_BAR_WIDTH;
    // Beyond the decades shown: pin the marker to the edge it lies past, so it still reads as "all below" or "all above".
    else if (k < first) rtolX = bars.find((b) => b.kind === 'decade')!.x - GAP / 2;
    else rtolX = bars.filter((b) => b.kind === 'decade').at(-1)!.x + HISTOGRAM_BAR_WIDTH + GAP / 2;
  }
  return { bars, rtolX, width: Math.max(0, bars.length * (HISTOGRAM_BAR_WIDTH + GAP) - GAP), plotHeight };
}
