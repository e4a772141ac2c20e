import { describe, expect, it } from 'vitest';
import { HISTOGRAM_BAR_WIDTH, histogramLayout } from '../../../webview/reportModel/chartGeometry';
import { decadeOf, errorHistogram } from '../../../webview/reportModel/histogram';

describe('error histogram', () => {
  it('puts values in decades, exact powers of ten at the start of theirs', () => {
    expect(decadeOf(1e-5)).toBe(-5);
    expect(decadeOf(9.99e-6)).toBe(-6);
    expect(decadeOf(1000)).toBe(3);
    expect(decadeOf(1e-300)).toBe(-300);
    expect(decadeOf(0.3)).toBe(-1);
  });

  it('keeps empty decades between the extremes and counts zeros and non-finite values apart', () => {
    const h = errorHistogram([0, 2e-7, 3e-7, 5e-5, NaN, Infinity, 0]);
    expect(h.zeros).toBe(2);
    expect(h.nonFinite).toBe(2);
    expect(h.bins).toEqual([
      { exponent: -7, count: 2 },
      { exponent: -6, count: 0 },
      { exponent: -5, count: 1 },
    ]);
    expect(h.maxCount).toBe(2);
  });

  it('is empty for no values', () => {
    expect(errorHistogram([])).toEqual({ zeros: 0, bins: [], nonFinite: 0, maxCount: 0 });
  });

  it('lays out bars in order, scaled to the tallest, with the rtol marker inside its decade', () => {
    const layout = histogramLayout(errorHistogram([0, 2e-6, 3e-6, 4e-6, 5e-5, NaN]), 1e-4, 100);
    expect(layout.bars.map((b) => b.label)).toEqual(['0', '1e-6', '1e-5', 'NaN/∞']);
    layout.bars.forEach((b, i) => expect(b.height).toBeCloseTo([100 / 3, 100, 100 / 3, 100 / 3][i]));
    // rtol = 1e-4 is past the last decade shown (1e-5): the marker sits right of it.
    expect(layout.rtolX).toBeGreaterThan(layout.bars[2].x + HISTOGRAM_BAR_WIDTH);
    expect(layout.rtolX).toBeLessThan(layout.bars[3].x);

    const inside = histogramLayout(errorHistogram([2e-5, 5e-4]), 3.16e-5, 100);
    const bin = inside.bars.find((b) => b.label === '1e-5')!;
    expect(inside.rtolX).toBeCloseTo(bin.x + 0.5 * HISTOGRAM_BAR_WIDTH, 0);

    const below = histogramLayout(errorHistogram([2e-5]), 1e-7, 100);
    expect(below.rtolX).toBeLessThan(below.bars[0].x);
  });

  it('has no rtol marker without decades', () => {
    expect(histogramLayout(errorHistogram([0]), 1e-4, 100).rtolX).toBeNull();
  });
});
