/** Sorting of the per-block parity table. */
import type { BlockReport } from '../../src/shared/reportData';

export type BlockSortKey = 'name' | 'maxAbs' | 'maxRel' | 'cosine' | 'params';
export type SortDirection = 'asc' | 'desc';

export interface BlockSort {
  key: BlockSortKey;
  dir: SortDirection;
}

export const BLOCK_SORT_KEYS: readonly BlockSortKey[] = ['name', 'maxAbs', 'maxRel', 'cosine', 'params'];

/** A first click sorts worst-first: largest errors, smallest cosine, largest blocks; names alphabetically. */
const FIRST_DIRECTION: Record<BlockSortKey, SortDirection> = { name: 'asc', maxAbs: 'desc', maxRel: 'desc', cosine: 'asc', params: 'desc' };

/** Clicking the sorted column flips it; clicking another starts with that column's worst-first direction. */
export function nextSort(current: BlockSort | null, key: BlockSortKey): BlockSort {
  if (current?.key === key) return { key, dir: current.dir === 'asc' ? 'desc' : 'asc' };
  return { key, dir: FIRST_DIRECTION[key] };
}

/** The number a column sorts by; null when there is none to compare (no parity run, or NaN). */
function valueOf(b: BlockReport, key: Exclude<BlockSortKey, 'name'>): number | null {
  const v = key === 'params' ? b.paramsBefore : b.parity?.[key];
  return v === undefined || Number.isNaN(v) ? null : v;
}

const byName = new Intl.Collator('en', { numeric: true }).compare;

/**
 * The blocks in table order; null keeps the model's order. Blocks without parity numbers
 * (or with NaN) go last in both directions, since "unknown" is neither good nor bad.
 */
export function sortBlocks(blocks: readonly BlockReport[], sort: BlockSort | null): BlockReport[] {
  if (!sort) return blocks.slice();
  const indexed = blocks.map((b, i) => ({ b, i }));
  const sign = sort.dir === 'asc' ? 1 : -1;
  indexed.sort((p, q) => {
    let c: number;
    if (sort.key === 'name') c = sign * byName(p.b.name, q.b.name);
    else {
      const x = valueOf(p.b, sort.key);
      const y = valueOf(q.b, sort.key);
      if (x === null || y === null) c = x === y ? 0 : x === null ? 1 : -1;
      else c = x === y ? 0 : sign * (x < y ? -1 : 1);
    }
    return c || p.i - q.i;
  });
  return indexed.map((e) => e.b);
}

export function isBlockSort(value: unknown): value is BlockSort {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { key?: unknown; dir?: unknown };
  return BLOCK_SORT_KEYS.includes(v.key as BlockSortKey) && (v.dir === 'asc' || v.dir === 'desc');
}
