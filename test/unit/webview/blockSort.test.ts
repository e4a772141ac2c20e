import { describe, expect, it } from 'vitest';
import type { BlockReport } from '../../../src/shared/reportData';
import { isBlockSort, nextSort, sortBlocks } from '../../../webview/reportModel/blockSort';
import { plainBlock } from './sampleReport';

function block(name: string, maxRel?: number, paramsBefore = 100, cosine = 1): BlockReport {
  return plainBlock(name, { paramsBefore, paramsAfter: 10, parity: maxRel === undefined ? undefined : { maxAbs: maxRel * 2, maxRel, cosine, pass: true } });
}

const names = (bs: BlockReport[]) => bs.map((b) => b.name);

describe('block table sorting', () => {
  const blocks = [block('stage1.10', 1e-6, 300, 0.9999), block('stage1.9', 5e-5, 100, 0.99), block('stage1.2'), block('stage0.0', 1e-7, 200, 1)];

  it('keeps model order without a sort', () => {
    expect(names(sortBlocks(blocks, null))).toEqual(['stage1.10', 'stage1.9', 'stage1.2', 'stage0.0']);
  });

  it('sorts names naturally, so 9 comes before 10', () => {
    expect(names(sortBlocks(blocks, { key: 'name', dir: 'asc' }))).toEqual(['stage0.0', 'stage1.2', 'stage1.9', 'stage1.10']);
    expect(names(sortBlocks(blocks, { key: 'name', dir: 'desc' }))).toEqual(['stage1.10', 'stage1.9', 'stage1.2', 'stage0.0']);
  });

  it('sorts numbers and puts blocks without numbers last in both directions', () => {
    expect(names(sortBlocks(blocks, { key: 'maxRel', dir: 'desc' }))).toEqual(['stage1.9', 'stage1.10', 'stage0.0', 'stage1.2']);
    expect(names(sortBlocks(blocks, { key: 'maxRel', dir: 'asc' }))).toEqual(['stage0.0', 'stage1.10', 'stage1.9', 'stage1.2']);
    expect(names(sortBlocks(blocks, { key: 'maxAbs', dir: 'desc' }))).toEqual(['stage1.9', 'stage1.10', 'stage0.0', 'stage1.2']);
    expect(names(sortBlocks(blocks, { key: 'cosine', dir: 'asc' }))).toEqual(['stage1.9', 'stage1.10', 'stage0.0', 'stage1.2']);
    expect(names(sortBlocks(blocks, { key: 'params', dir: 'desc' }))).toEqual(['stage1.10', 'stage0.0', 'stage1.9', 'stage1.2']);
  });

  it('treats NaN as missing and keeps ties in model order', () => {
    const odd = [block('a', NaN), block('b', 1e-6), block('c', 1e-6)];
    expect(names(sortBlocks(odd, { key: 'maxRel', dir: 'desc' }))).toEqual(['b', 'c', 'a']);
    expect(names(sortBlocks(odd, { key: 'maxRel', dir: 'asc' }))).toEqual(['b', 'c', 'a']);
  });

  it('does not reorder its input', () => {
    const copy = blocks.slice();
    sortBlocks(blocks, { key: 'name', dir: 'asc' });
    expect(blocks).toEqual(copy);
  });

  it('flips the sorted column and starts other columns worst-first', () => {
    expect(nextSort(null, 'maxRel')).toEqual({ key: 'maxRel', dir: 'desc' });
    expect(nextSort({ key: 'maxRel', dir: 'desc' }, 'maxRel')).toEqual({ key: 'maxRel', dir: 'asc' });
    expect(nextSort({ key: 'maxRel', dir: 'asc' }, 'cosine')).toEqual({ key: 'cosine', dir: 'asc' });
    expect(nextSort(null, 'name')).toEqual({ key: 'name', dir: 'asc' });
    expect(nextSort(null, 'params')).toEqual({ key: 'params', dir: 'desc' });
  });

  it('recognises saved sorts', () => {
    expect(isBlockSort({ key: 'maxAbs', dir: 'asc' })).toBe(true);
    expect(isBlockSort({ key: 'stage', dir: 'asc' })).toBe(false);
    expect(isBlockSort({ key: 'maxAbs', dir: 'up' })).toBe(false);
    expect(isBlockSort(null)).toBe(false);
  });
});
