import * as path from 'node:path';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { parityWorkerUnderTest } from '../parity/bundle';
import { TINY } from '../parity/faultyFiles';

/**
 * The report merges what the check built instead of building it again: the graphs the check ran and
 * the kernels its deploy form holds. Fusion and graph building are counted where they happen.
 */
vi.mock('../../../src/core/fuse/fuseBlock', async (original) => {
  const m = await original<typeof import('../../../src/core/fuse/fuseBlock')>();
  return { ...m, fuseBlock: vi.fn(m.fuseBlock), fuseBlockEncoded: vi.fn(m.fuseBlockEncoded) };
});
vi.mock('../../../src/core/graph/buildGraph', async (original) => {
  const m = await original<typeof import('../../../src/core/graph/buildGraph')>();
  return { ...m, buildGraph: vi.fn(m.buildGraph) };
});
const { fuseBlock, fuseBlockEncoded } = await import('../../../src/core/fuse/fuseBlock');
const { buildGraph } = await import('../../../src/core/graph/buildGraph');
const { buildReport } = await import('../../../src/core/report/buildReport');
const { convertFile } = await import('../../../src/core/convert/convert');

const BLOCKS = 7;
const env = parityWorkerUnderTest('replens-reuse-');
let small: { workerPath: string; shape: number[]; inputs: number };

beforeAll(async () => {
  small = { workerPath: env.workerPath, shape: [1, 3, 32, 32], inputs: 1 };
});
beforeEach(() => vi.clearAllMocks());

describe('the report reuses the check', () => {
  it('Check Parity: two graphs built and each block fused once, all by the check', async () => {
    const report = await buildReport(TINY, small);
    expect(report.pass).toBe(true);
    expect(vi.mocked(buildGraph)).toHaveBeenCalledTimes(2);
    expect(vi.mocked(fuseBlockEncoded)).toHaveBeenCalledTimes(BLOCKS);
    expect(vi.mocked(fuseBlock)).not.toHaveBeenCalled();
    expect(report.blocks.every((b) => b.kernelStats !== undefined)).toBe(true);
  }, 60_000);

  it('after Convert: the deploy file’s own kernels, and no fusion at all', async () => {
    const output = path.join(env.dir, 'tiny.deploy.pth');
    await convertFile(TINY, { output, force: true });
    vi.clearAllMocks();
    const report = await buildReport(TINY, { ...small, deploy: output });
    expect(report.pass).toBe(true);
    expect(vi.mocked(buildGraph)).toHaveBeenCalledTimes(2);
    expect(vi.mocked(fuseBlockEncoded)).not.toHaveBeenCalled();
    expect(vi.mocked(fuseBlock)).not.toHaveBeenCalled();
    expect(report.blocks.every((b) => b.kernelStats !== undefined)).toBe(true);
  }, 60_000);

  it('a check that could not run: the report builds both graphs and fuses each block itself', async () => {
    const report = await buildReport(TINY, { ...small, inputs: 0 });
    expect(report.pass).toBeNull();
    expect(vi.mocked(buildGraph)).toHaveBeenCalledTimes(2);
    expect(vi.mocked(fuseBlock)).toHaveBeenCalledTimes(BLOCKS);
    expect(report.blocks.every((b) => b.kernelStats !== undefined)).toBe(true);
  }, 60_000);
});
