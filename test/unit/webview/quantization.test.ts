import { describe, expect, it } from 'vitest';
import type { BlockReport, KernelStats } from '../../../src/shared/reportData';
import { sparklinePaths } from '../../../webview/reportModel/chartGeometry';
import { OUTLIER_THRESHOLD, quantRows, sparkline } from '../../../webview/reportModel/quantization';
import { plainBlock, smallSample } from './sampleReport';

const withStats = (name: string, kernelStats?: KernelStats): BlockReport => plainBlock(name, { kernelStats });
const stats = (outlierRatio: number): KernelStats => ({ channelMaxAbs: [1, 1, outlierRatio], outlierRatio, maxAbs: outlierRatio });

describe('quantization view', () => {
  it('lists kernels worst outlier ratio first and flags those above the threshold', () => {
    const rows = quantRows([
      withStats('a', stats(2)),
      withStats('none'),
      withStats('b', stats(20)),
      withStats('c', stats(Infinity)),
      withStats('d', stats(NaN)),
      withStats('e', stats(OUTLIER_THRESHOLD)),
    ]);
    expect(rows.map((r) => r.block)).toEqual(['c', 'b', 'e', 'a', 'd']);
    expect(rows.map((r) => r.flagged)).toEqual([true, true, false, false, false]);
    expect(rows[1].channels).toBe(3);
  });

  it('flags exactly the sample blocks built with an outlier channel', () => {
    const report = smallSample();
    const flagged = quantRows(report.blocks)
      .filter((r) => r.flagged)
      .map((r) => r.block)
      .sort();
    expect(flagged).toEqual(['stage2.0', 'stage3.10', 'stage3.2']);
  });

  it('keeps every channel as a bar when there are few', () => {
    const s = sparkline([1, 2, 4, 40]);
    expect(s.heights).toEqual([0.025, 0.05, 0.1, 1]);
    expect(s.channelsPerBar).toBe(1);
    // median 3, threshold 8 → only 40 stands out.
    expect(s.outliers).toEqual([false, false, false, true]);
  });

  it('merges channels into bars by their maximum, so an outlier is never averaged away', () => {
    const values = Array.from({ length: 256 }, () => 0.1);
    values[77] = 5;
    const s = sparkline(values, OUTLIER_THRESHOLD, 64);
    expect(s.heights).toHaveLength(64);
    expect(s.channelsPerBar).toBe(4);
    expect(s.heights[19]).toBe(1);
    expect(s.outliers.filter(Boolean)).toHaveLength(1);
    expect(s.outliers[19]).toBe(true);
    expect(sparkline([]).heights).toEqual([]);
  });

  it('draws bars bottom-aligned, outliers in their own path, empty channels as a hairline', () => {
    const paths = sparklinePaths({ heights: [0, 0.5, 1], outliers: [false, false, true], channelsPerBar: 1 }, 30, 20);
    expect(paths.normal).toBe('M0.00 19.00h9.00v1.00h-9.00ZM10.00 10.00h9.00v10.00h-9.00Z');
    expect(paths.outlier).toBe('M20.00 0.00h9.00v20.00h-9.00Z');
    expect(sparklinePaths({ heights: [], outliers: [], channelsPerBar: 1 }, 30, 20)).toEqual({ normal: '', outlier: '' });
  });
});
