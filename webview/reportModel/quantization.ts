/**
 * The quantization view: which fused kernels will quantize badly. Fusion scales every
 * output channel by its BN gamma/sigma and adds the 1×1 and identity branches, so a few
 * channels can end up far larger than the rest; one INT8 scale for the whole tensor then
 * wastes most of its 256 levels on those few, which is where deploy-form accuracy is lost.
 */
import type { BlockReport } from '../../src/shared/reportData';

/** max/median of the per-channel max|w| above which per-tensor INT8 is expected to hurt. */
export const OUTLIER_THRESHOLD = 8;
/** Sparklines wider than this many bars stop being readable at table-row size. */
export const SPARKLINE_BARS = 64;

export interface Sparkline {
  /** Bar heights in [0, 1], relative to the largest channel. */
  heights: number[];
  /** Bars holding a channel above threshold × median. */
  outliers: boolean[];
  /** Channels per bar (1 when there are no more channels than bars). */
  channelsPerBar: number;
}

export interface QuantRow {
  block: string;
  stage: string;
  channels: number;
  maxAbs: number;
  ratio: number;
  flagged: boolean;
  sparkline: Sparkline;
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Consecutive channels share a bar when there are too many; a bar shows the largest, so no outlier is averaged away. */
export function sparkline(channelMaxAbs: readonly number[], threshold = OUTLIER_THRESHOLD, maxBars = SPARKLINE_BARS): Sparkline {
  const n = channelMaxAbs.length;
  if (n === 0) return { heights: [], outliers: [], channelsPerBar: 1 };
  const per = Math.ceil(n / maxBars);
  const top = Math.max(...channelMaxAbs);
  const cut = threshold * median(channelMaxAbs);
  const heights: number[] = [];
  const outliers: boolean[] = [];
  for (let start = 0; start < n; start += per) {
    let m = 0;
    for (let c = start; c < Math.min(n, start + per); c++) m = Math.max(m, channelMaxAbs[c]);
    heights.push(top > 0 ? m / top : 0);
    outliers.push(m > cut);
  }
  return { heights, outliers, channelsPerBar: per };
}

/** Blocks with fused-kernel statistics, worst outlier ratio first (ties in model order). */
export function quantRows(blocks: readonly BlockReport[], threshold = OUTLIER_THRESHOLD): QuantRow[] {
  const rows: QuantRow[] = [];
  for (const b of blocks) {
    const k = b.kernelStats;
    if (!k) continue;
    rows.push({
      block: b.name,
      stage: b.stage,
      channels: k.channelMaxAbs.length,
      maxAbs: k.maxAbs,
      ratio: k.outlierRatio,
      flagged: k.outlierRatio > threshold,
      sparkline: sparkline(k.channelMaxAbs, threshold),
    });
  }
  // NaN ratios (broken kernels) sort last rather than poisoning the comparison.
  const key = (r: QuantRow) => (Number.isNaN(r.ratio) ? -Infinity : r.ratio);
  return rows
    .map((r, i) => ({ r, i }))
    .sort((p, q) => key(q.r) - key(p.r) || p.i - q.i)
    .map((e) => e.r);
}
