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

/** Human-readable byte counts. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** One line on which of a training checkpoint's weights were read: the slot, why, and how to pick another. */
export function weightsText(choice: { key: string; reason: string; slots: readonly { key: string }[] }): string {
  const others = choice.slots.map((s) => s.key).filter((k) => k !== choice.key);
  const why = choice.reason === 'chosen' ? 'as asked' : choice.reason;
  return `weights from '${choice.key}': ${why}${others.length ? `; --weights ${others[0]} reads '${others[0]}' instead` : ''}`;
}
