/**
 * Number formatting for the report view. Plain strings, no markup, so the same text
 * can go into table cells, SVG labels and aria-labels.
 */
import { formatBytes } from '../../src/shared/format';

export const DASH = '–';

/** One formatter for every count: toLocaleString builds a new one per call (1,300 calls for a 641-block table took 30 ms). */
const COUNT = new Intl.NumberFormat('en-US');

export function formatCount(n: number): string {
  return COUNT.format(n);
}

/** Errors span many decades, so they are shown in scientific notation with 3 significant digits. */
export function formatError(v: number | null | undefined): string {
  if (v === null || v === undefined) return DASH;
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '-∞';
  if (v === 0) return '0';
  return v.toExponential(2);
}

/** Cosine similarities of a good conversion all start with 0.9999…, so six decimals are the minimum that tells them apart. */
export function formatCosine(v: number | null | undefined): string {
  if (v === null || v === undefined) return DASH;
  return Number.isFinite(v) ? v.toFixed(6) : String(v);
}

export function formatMs(v: number | null): string {
  return v === null ? DASH : `${v < 10 ? v.toFixed(2) : v.toFixed(1)}${NBSP}ms`;
}

export function formatFileSize(v: number | null): string {
  return v === null ? DASH : formatBytes(v);
}

/** How many times larger `before` is than `after`, e.g. latency speed-up; null when either is missing or zero. */
export function ratioOf(before: number | null, after: number | null): number | null {
  if (before === null || after === null || !(after > 0) || !(before > 0)) return null;
  return before / after;
}

/** '2.31×'; the outlier ratio of an all-zero-median kernel is infinite. */
export function formatTimes(v: number | null): string {
  if (v === null) return DASH;
  if (!Number.isFinite(v)) return '∞×';
  return `${v < 10 ? v.toFixed(2) : v.toFixed(1)}×`;
}

/** Keeps a number and its unit on one line. */
const NBSP = '\u00a0';

/** Signed relative change from `before` to `after`: '−37.5 %', '±0 %'. */
export function formatChange(before: number, after: number): string {
  if (before === 0) return after === 0 ? `±0${NBSP}%` : DASH;
  const pct = ((after - before) / before) * 100;
  if (pct === 0) return `±0${NBSP}%`;
  const digits = Math.abs(pct) < 10 ? 1 : 0;
  return `${pct < 0 ? '−' : '+'}${Math.abs(pct).toFixed(digits)}${NBSP}%`;
}

export function formatStride(stride: number | null, inferred: boolean): string {
  if (stride === null) return 'unknown';
  return inferred ? `${stride} (inferred)` : String(stride);
}

/**
 * A file name or path cut after each '/', '\\', '.', '_' and '-': the only places a long name may wrap,
 * so 'repvgg_tiny_train_folded.onnx' never breaks inside 'folded'.
 */
export function nameBreakSegments(name: string): string[] {
  return name.match(/[^/\\._-]*(?:[/\\._-]+|$)/g)?.filter(Boolean) ?? [];
}
