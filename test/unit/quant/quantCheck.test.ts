import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeFromFloat64 } from '../../../src/core/formats/encode';
import { diagnose, quantCheck, type QuantCheckOptions } from '../../../src/core/quant/quantCheck';
import { writeAtomically } from '../../../src/core/writers/atomicFile';
import { writeTorchCheckpoint } from '../../../src/core/writers/torchWriter';
import { seededRandom } from '../fuse/reference';
import { upstreamRepvggMetas } from '../model/syntheticStateDicts';
import { parityWorkerUnderTest } from '../parity/bundle';

const env = parityWorkerUnderTest('replens-quant-');
let options: QuantCheckOptions;

beforeAll(async () => {
  options = { workerPath: env.workerPath, inputs: 2, shape: [1, 3, 32, 32] };
});

/**
 * An upstream RepVGG train checkpoint (stages of 1, 2, 2, 1 blocks, widths 16…64) with random weights
 * and BN statistics, and `plant` applied to the values before they are written.
 */
async function checkpoint(name: string, plant: (values: Map<string, Float64Array>) => void = () => {}): Promise<string> {
  const rand = seededRandom(11);
  const metas = upstreamRepvggMetas({ blocks: [1, 2, 2, 1], widths: [16, 16, 32, 64, 64], classes: 10 });
  const values = new Map<string, Float64Array>();
  for (const { name: tensor, shape } of metas) {
    const n = shape.reduce((a, b) => a * b, 1);
    const positive = tensor.endsWith('running_var') || /(bn|identity)\.weight$/.test(tensor);
    values.set(
      tensor,
      Float64Array.from({ length: n }, () => (tensor.endsWith('num_batches_tracked') ? 100 : positive ? 0.5 + rand() : (2 * rand() - 1) * 0.3)),
    );
  }
  plant(values);
  const tensors = metas.map(({ name: tensor, shape }) => {
    const count = tensor.endsWith('num_batches_tracked');
    const v = values.get(tensor)!;
    const bytes = count ? new Uint8Array(BigInt64Array.from(v, BigInt).buffer) : encodeFromFloat64('float32', v);
    return { name: tensor, dtype: count ? ('int64' as const) : ('float32' as const), shape, bytes: async () => bytes };
  });
  const file = path.join(env.dir, name);
  await writeAtomically(file, (sink) => writeTorchCheckpoint(sink, tensors), { overwrite: true });
  return file;
}

describe('quantCheck', () => {
  it('a block whose fused kernel has one outlier output channel comes first, and per-channel weights fix it', async () => {
    // stage3.1's dense BN scales output channel 5 by 40: its fused kernel alone sets a per-tensor scale.
    const file = await checkpoint('weight-outlier.pth', (v) => {
      v.get('stage3.1.rbr_dense.bn.weight')![5] *= 40;
    });
    const result = await quantCheck(file, options);
    const [worst] = result.blocks;
    expect(worst.name).toBe('stage3.1');
    expect(worst.cause).toBe('per-tensor weights');
    expect(worst.weightOutlier).toMatchObject({ channel: 5 });
    expect(worst.weightOutlier!.ratio).toBeGreaterThan(10);
    expect(worst.perChannel.weightError).toBeLessThan(worst.weightError / 4);
    expect(worst.perChannel.int8Error).toBeLessThan(worst.int8Error / 2);
    expect(worst.advice).toMatch(/^per-channel weights fix this block .*output channel 5's kernel/);
    // The whole model measured both ways: per-channel weights lose less at the logits too.
    const [perTensor, perChannel] = ['per-tensor', 'per-channel'].map((w) => result.outputs.find((o) => o.weights === w)!);
    expect(perChannel.relError).toBeLessThan(perTensor.relError);
  }, 60_000);

  it('a block whose input has one dominant channel comes first, with that channel named', async () => {
    // stage2.0's output channel 9 gets a large shift in every branch: after the ReLU it sets stage2.1's input range,
    // while stage2.1 does not read it (a channel the next layer has learnt to ignore): its quantization step
    // is then coarse for every channel that matters.
    const file = await checkpoint('activation-outlier.pth', (v) => {
      for (const bn of ['rbr_dense.bn', 'rbr_1x1.bn']) v.get(`stage2.0.${bn}.bias`)![9] = 60;
      const dense = v.get('stage2.1.rbr_dense.conv.weight')!;
      const one = v.get('stage2.1.rbr_1x1.conv.weight')!;
      for (let o = 0; o < 32; o++) {
        for (let k = 0; k < 9; k++) dense[(o * 32 + 9) * 9 + k] = 0;
        one[o * 32 + 9] = 0;
      }
      v.get('stage2.1.rbr_identity.weight')![9] = 0;
    });
    const result = await quantCheck(file, options);
    const [worst] = result.blocks;
    expect(worst.name).toBe('stage2.1');
    expect(worst.cause).toBe('activation range');
    expect(worst.activationOutlier).toMatchObject({ channel: 9 });
    expect(worst.activationError).toBeGreaterThan(worst.weightError);
    expect(worst.advice).toMatch(/^activation range dominated by channel 9 /);
  }, 60_000);

  it('a model without planted outliers: every error small, both weight schemes measured, the inputs said', async () => {
    const result = await quantCheck(await checkpoint('plain.pth'), options);
    expect(result).toMatchObject({ topology: 'classifier', inputs: 2, shape: [1, 3, 32, 32], calibration: { source: 'random', method: 'minmax', files: [] } });
    expect(result.blocks.map((b) => b.name).sort()).toEqual(['stage0', 'stage1.0', 'stage2.0', 'stage2.1', 'stage3.0', 'stage3.1', 'stage4.0']);
    for (const b of result.blocks) {
      for (const e of [b.int8Error, b.weightError, b.activationError, b.perChannel.int8Error, b.perChannel.weightError]) expect(e).toBeGreaterThan(0);
    }
    // Worst first.
    expect(result.blocks.map((b) => b.int8Error)).toEqual([...result.blocks.map((b) => b.int8Error)].sort((a, b) => b - a));
    expect(result.outputs.map((o) => [o.name, o.weights])).toEqual([
      ['output', 'per-tensor'],
      ['output', 'per-channel'],
    ]);
    for (const o of result.outputs) expect(o.cosine).toBeGreaterThan(0.99);
  }, 60_000);
});

describe('diagnose', () => {
  const block = (int8: number, w: number, a: number, wPerChannel: number) => ({
    int8Error: int8,
    weightError: w,
    activationError: a,
    perChannel: { int8Error: Math.max(wPerChannel, a), weightError: wPerChannel },
    activationOutlier: { channel: 3, ratio: 12 },
    weightOutlier: { channel: 7, ratio: 2 },
  });

  it('under 2 % there is nothing to fix', () => {
    expect(diagnose(block(0.019, 0.018, 0.005, 0.01))).toEqual({ cause: 'none', advice: 'within ordinary INT8 rounding (under 2 %)' });
  });

  it('weights first: per-channel weights fix the block when they bring it under 2 %, otherwise the kernel itself is the problem', () => {
    expect(diagnose(block(0.08, 0.08, 0.01, 0.015))).toEqual({
      cause: 'per-tensor weights',
      advice: 'per-channel weights fix this block (weight error 8.0 % per tensor, 1.5 % per channel)',
    });
    expect(diagnose(block(0.08, 0.08, 0.01, 0.05)).cause).toBe('weights');
  });

  it('activations first: the dominant channel is named when it stands out', () => {
    expect(diagnose(block(0.06, 0.01, 0.05, 0.005)).advice).toBe(
      "activation range dominated by channel 3 (12.0× the median channel's): consider QARepVGG-style training or keeping this block in FP16",
    );
    expect(diagnose({ ...block(0.06, 0.01, 0.05, 0.005), activationOutlier: { channel: 3, ratio: 1.5 } }).advice).toMatch(
      /^its input activations lose the most/,
    );
  });
});
