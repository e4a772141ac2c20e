import { describe, expect, it } from 'vitest';
import { formatCompact } from '../../../src/shared/format';
import {
  formatChange,
  formatCosine,
  formatCount,
  formatError,
  formatFileSize,
  formatMs,
  formatStride,
  formatTimes,
  nameBreakSegments,
  ratioOf,
} from '../../../webview/reportModel/format';

describe('report number formatting', () => {
  it('groups counts and shortens large ones with SI prefixes', () => {
    expect(formatCount(1234567)).toBe('1,234,567');
    expect(formatCompact(950)).toBe('950');
    expect(formatCompact(1234567)).toBe('1.23 M');
    expect(formatCompact(999_999)).toBe('1.00 M');
    expect(formatCompact(1.5e9)).toBe('1.50 G');
    expect(formatCompact(-2500)).toBe('-2.50 k');
  });

  it('writes errors in scientific notation and names the special values', () => {
    expect(formatError(1.23456e-5)).toBe('1.23e-5');
    expect(formatError(0)).toBe('0');
    expect(formatError(NaN)).toBe('NaN');
    expect(formatError(Infinity)).toBe('∞');
    expect(formatError(undefined)).toBe('–');
    expect(formatError(null)).toBe('–');
  });

  it('keeps six decimals of cosine so near-1 values differ', () => {
    expect(formatCosine(0.99999912)).toBe('0.999999');
    expect(formatCosine(1)).toBe('1.000000');
    expect(formatCosine(undefined)).toBe('–');
  });

  it('formats latency, sizes and ratios, with a dash for what was not measured', () => {
    expect(formatMs(7.912)).toBe('7.91\u00a0ms');
    expect(formatMs(123.45)).toBe('123.5\u00a0ms');
    expect(formatMs(null)).toBe('–');
    expect(formatFileSize(2048)).toBe('2.0 KiB');
    expect(formatFileSize(null)).toBe('–');
    expect(ratioOf(14.2, 7.1)).toBe(2);
    expect(ratioOf(null, 7.1)).toBeNull();
    expect(ratioOf(14.2, 0)).toBeNull();
    expect(formatTimes(2)).toBe('2.00×');
    expect(formatTimes(12.34)).toBe('12.3×');
    expect(formatTimes(Infinity)).toBe('∞×');
    expect(formatTimes(null)).toBe('–');
  });

  it('signs relative changes with a real minus', () => {
    expect(formatChange(200, 150)).toBe('−25\u00a0%');
    expect(formatChange(100, 104.5)).toBe('+4.5\u00a0%');
    expect(formatChange(5, 5)).toBe('±0\u00a0%');
    expect(formatChange(0, 0)).toBe('±0\u00a0%');
    expect(formatChange(0, 3)).toBe('–');
  });

  it('marks inferred strides', () => {
    expect(formatStride(2, true)).toBe('2 (inferred)');
    expect(formatStride(1, false)).toBe('1');
    expect(formatStride(null, false)).toBe('unknown');
  });

  it('cuts file names and paths only after separators, keeping every character', () => {
    expect(nameBreakSegments('repvgg_tiny_train_folded.onnx')).toEqual(['repvgg_', 'tiny_', 'train_', 'folded.', 'onnx']);
    expect(nameBreakSegments('/tmp/replens-vscode-a1/m.deploy.pth')).toEqual(['/', 'tmp/', 'replens-', 'vscode-', 'a1/', 'm.', 'deploy.', 'pth']);
    expect(nameBreakSegments('C:\\models\\b3__x.pth.tar')).toEqual(['C:\\', 'models\\', 'b3__', 'x.', 'pth.', 'tar']);
    expect(nameBreakSegments('model')).toEqual(['model']);
    expect(nameBreakSegments('')).toEqual([]);
  });
});
