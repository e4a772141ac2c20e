import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quantCheck, type QuantCheckResult } from '../../../src/core/quant/quantCheck';
import { bundleParityWorker, type Bundle } from '../parity/bundle';

/**
 * QARepVGG's claim, measured: the same tiny YOLOv6 backbone built with each of YOLOv6's block classes and
 * trained the same way (test/fixtures/peers/yolov6/make_trained.py, YOLOv6's own code at the pinned commit),
 * quantized to INT8 on the same inputs. Every block is measured alone on its float input.
 */
const YOLOV6 = path.join(__dirname, '..', '..', 'fixtures', 'peers', 'yolov6');
let worker: Bundle & { workerPath: string };
const results = new Map<string, QuantCheckResult>();

beforeAll(async () => {
  worker = await bundleParityWorker();
  const options = { workerPath: worker.workerPath, inputs: 4, shape: [1, 3, 64, 64] };
  for (const [mode, qarepvgg] of [
    ['repvgg', undefined],
    ['qarepvgg', 'v1'],
    ['qarepvggv2', 'v2'],
  ] as const) {
    results.set(mode, await quantCheck(path.join(YOLOV6, `trained_${mode}.pth`), { ...options, qarepvgg }));
  }
}, 120_000);
afterAll(async () => worker?.dispose());

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const blockErrors = (mode: string) => results.get(mode)!.blocks.map((b) => b.int8Error);

describe('INT8 of trained RepVGG and QARepVGG blocks of the same shapes', () => {
  it('measures the same ten blocks in each', () => {
    const names = (mode: string) =>
      results
        .get(mode)!
        .blocks.map((b) => b.name)
        .sort();
    expect(names('repvgg')).toHaveLength(10);
    expect(names('qarepvgg')).toEqual(names('repvgg'));
    expect(names('qarepvggv2')).toEqual(names('repvgg'));
  });

  it.each(['qarepvgg', 'qarepvggv2'])('%s blocks lose less to INT8 than RepVGG blocks: on average and at the worst block', (mode) => {
    expect(mean(blockErrors(mode))).toBeLessThan(0.85 * mean(blockErrors('repvgg')));
    expect(Math.max(...blockErrors(mode))).toBeLessThan(Math.max(...blockErrors('repvgg')));
  });
});
