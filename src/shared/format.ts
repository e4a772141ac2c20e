/**
 * Number formatting that the CLI, the extension and the webview share, so a count reads the same
 * everywhere. Plain strings, no markup.
 */

const SI = ['', 'k', 'M', 'G', 'T', 'P'];

/** 1234567 → '1.23 M': for MACs and parameter totals in cards, where digits beyond three say nothing. */
export function formatCompact(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  let i = 0;
  let v = Math.abs(n);
  while (v >= 999.5 && i < SI.length - 1) {
    v /= 1000;
    i++;
  }
  const sign = n < 0 ? '-' : '';
  if (i === 0) return `${sign}${Number.isInteger(v) ? v : v.toPrecision(3)}`;
  return `${sign}${v.toPrecision(3)} ${SI[i]}`;
}
