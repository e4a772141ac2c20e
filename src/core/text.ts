/** Human-readable byte counts, shared by the CLI and the webviews. */
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
