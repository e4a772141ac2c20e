import type { KernelStats } from '../../shared/reportData';

/**
 * Per-output-channel spread of a fused kernel. Fusion multiplies each channel by
 * gamma/sqrt(var+eps) and adds the identity, so single channels can grow far beyond
 * the rest — exactly what per-tensor INT8 quantization handles badly.
 */
export function kernelStats(weight: ArrayLike<number>, outChannels: number): KernelStats {
  const per = weight.length / outChannels;
  const channelMaxAbs = new Array<number>(outChannels).fill(0);
  for (let c = 0; c < outChannels; c++) {
    let m = 0;
    for (let j = 0; j < per; j++) m = Math.max(m, Math.abs(weight[c * per + j]));
    channelMaxAbs[c] = m;
  }
  const sorted = [...channelMaxAbs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  const maxAbs = sorted.at(-1) ?? 0;
  return { channelMaxAbs, outlierRatio: median > 0 ? maxAbs / median : maxAbs > 0 ? Infinity : 1, maxAbs };
}
