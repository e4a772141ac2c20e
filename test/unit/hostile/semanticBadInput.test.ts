import { describe, expect, it } from 'vitest';
import { encodeFromFloat64 } from '../../../src/core/formats/encode';
import type { ModelFile } from '../../../src/core/formats/modelFile';
import { Tensor } from '../../../src/core/formats/tensor';
import { FusionError } from '../../../src/core/fuse/fuseBlock';
import { buildStructure } from '../../../src/core/model/buildStructure';
import { convertInMemory, fixture, readBytes } from './hostileHelpers';

/*
 * Well-formed files with bad numbers or a broken block, made by editing real fixtures'
 * tensors: conversion refuses the block by name with the reason, or, where torch would
 * compute the same thing, converts exactly.
 */

const TINY = 'models/repvgg_tiny_train.safetensors';

async function load(rel: string): Promise<ModelFile> {
  return readBytes(fixture(rel), rel);
}

function replace(m: ModelFile, name: string, make: (t: Tensor) => Tensor): void {
  const i = m.tensors.findIndex((t) => t.name === name);
  expect(i, `${name} is in the fixture`).toBeGreaterThanOrEqual(0);
  m.tensors[i] = make(m.tensors[i]);
}

/** Element `index` of tensor `name` set to `value`, in the tensor's own dtype. */
function setValue(m: ModelFile, name: string, index: number, value: number): void {
  replace(
    m,
    name,
    (t) =>
      new Tensor(t.name, t.dtype, t.shape, async () => {
        const v = await t.toFloat64();
        v[index] = value;
        return encodeFromFloat64(t.dtype, v);
      }),
  );
}

/** Tensor `name` with a new shape and values (zeros unless given). */
function reshape(m: ModelFile, name: string, shape: number[], values?: (old: Float64Array) => Float64Array): void {
  replace(
    m,
    name,
    (t) =>
      new Tensor(t.name, t.dtype, shape, async () => {
        const n = shape.reduce((a, b) => a * b, 1);
        return encodeFromFloat64(t.dtype, values ? values(await t.toFloat64()) : new Float64Array(n));
      }),
  );
}

function remove(m: ModelFile, name: string): void {
  const before = m.tensors.length;
  m.tensors = m.tensors.filter((t) => t.name !== name);
  expect(m.tensors.length, `${name} is in the fixture`).toBe(before - 1);
}

async function refusal(m: ModelFile): Promise<FusionError> {
  const e = await convertInMemory(m).then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(FusionError);
  return e as FusionError;
}

async function values(m: ModelFile, name: string): Promise<Float64Array> {
  return m.tensors.find((t) => t.name === name)!.toFloat64();
}

describe('bad numbers: the block is refused by name, with the tensor and the reason', () => {
  it('NaN in a k×k conv weight', async () => {
    const m = await load(TINY);
    setValue(m, 'stage2.1.rbr_dense.conv.weight', 5, NaN);
    const e = await refusal(m);
    expect([e.block, e.reason]).toEqual(['stage2.1', 'stage2.1.rbr_dense.conv.weight contains NaN at index 5']);
  });

  it("+Infinity in an identity branch's BatchNorm weight", async () => {
    const m = await load(TINY);
    setValue(m, 'stage3.1.rbr_identity.weight', 3, Infinity);
    const e = await refusal(m);
    expect([e.block, e.reason]).toEqual(['stage3.1', 'stage3.1.rbr_identity.weight contains Infinity at index 3']);
  });

  it('-Infinity in a 1×1 BatchNorm bias (timm naming)', async () => {
    const m = await load('models/timm_repvgg_train.safetensors');
    setValue(m, 'stages.1.1.conv_1x1.bn.bias', 0, -Infinity);
    const e = await refusal(m);
    expect([e.block, e.reason]).toEqual(['stages.1.1', 'stages.1.1.conv_1x1.bn.bias contains -Infinity at index 0']);
  });

  it('NaN in a float16 checkpoint', async () => {
    const m = await load('models/repvgg_tiny_fp16.pt');
    setValue(m, 'stage4.0.rbr_1x1.bn.running_mean', 7, NaN);
    const e = await refusal(m);
    expect([e.block, e.reason]).toEqual(['stage4.0', 'stage4.0.rbr_1x1.bn.running_mean contains NaN at index 7']);
  });

  it('a negative running_var', async () => {
    const m = await load(TINY);
    setValue(m, 'stage1.0.rbr_dense.bn.running_var', 2, -1);
    const e = await refusal(m);
    expect([e.block, e.reason]).toEqual(['stage1.0', 'stage1.0.rbr_dense.bn.running_var[2] = -1: running_var + eps must be positive']);
  });

  it('a running_var just below -eps, in an identity branch', async () => {
    const m = await load('models/mobileone_train.pth');
    setValue(m, 'stage2.2.rbr_skip.running_var', 0, -2e-5);
    const e = await refusal(m);
    expect(e.block).toBe('stage2.2');
    // -2e-5 as the float32 the file holds.
    expect(e.reason).toBe(`stage2.2.rbr_skip.running_var[0] = ${Math.fround(-2e-5)}: running_var + eps must be positive`);
  });
});

describe('values torch folds without trouble: converted as torch computes them', () => {
  /** Fused weight and bias of channel c of a dense + 1×1 block, straight from the BatchNorm formula. */
  async function expectedChannel(m: ModelFile, block: string, c: number, inPerGroup: number, k: number, eps: number) {
    const weight = new Float64Array(inPerGroup * k * k);
    let bias = 0;
    for (const [conv, bn, size] of [
      ['rbr_dense.conv', 'rbr_dense.bn', k],
      ['rbr_1x1.conv', 'rbr_1x1.bn', 1],
    ] as const) {
      const w = await values(m, `${block}.${conv}.weight`);
      const [g, b, mean, v] = await Promise.all(['weight', 'bias', 'running_mean', 'running_var'].map((p) => values(m, `${block}.${bn}.${p}`)));
      const t = g[c] / Math.sqrt(v[c] + eps);
      const off = (k - size) / 2;
      for (let i = 0; i < inPerGroup; i++) {
        for (let y = 0; y < size; y++)
          for (let x = 0; x < size; x++) weight[(i * k + y + off) * k + x + off] += w[((c * inPerGroup + i) * size + y) * size + x] * t;
      }
      bias += b[c] - mean[c] * t;
    }
    return { weight, bias };
  }

  for (const variance of [0, -0.5e-5]) {
    it(`running_var ${variance} (eps 1e-5 keeps the divisor positive)`, async () => {
      const m = await load(TINY);
      setValue(m, 'stage1.0.rbr_dense.bn.running_var', 4, variance);
      const out = await convertInMemory(m);
      expect(out.fused).toContain('stage1.0');
      const want = await expectedChannel(m, 'stage1.0', 4, 8, 3, 1e-5);
      const weight = out.values.get('stage1.0.rbr_reparam.weight')!.subarray(4 * 72, 5 * 72);
      const close = (got: number, w: number) => Math.abs(got - w) <= 1e-6 * Math.max(1, Math.abs(w));
      expect(
        [...weight].every((x, i) => close(x, want.weight[i])),
        `${[...weight]} vs ${[...want.weight]}`,
      ).toBe(true);
      expect(close(out.values.get('stage1.0.rbr_reparam.bias')![4], want.bias)).toBe(true);
      // Large (1/sqrt(eps)) but finite: a float32 holds it.
      expect(weight.every(Number.isFinite)).toBe(true);
    });
  }

  it('NaN in a tensor outside every block is copied as it is, and every block is fused', async () => {
    const m = await load(TINY);
    setValue(m, 'linear.weight', 0, NaN);
    const out = await convertInMemory(m);
    expect(out.fused).toHaveLength(7);
    expect(out.values.get('linear.weight')![0]).toBeNaN();
    expect(out.values.get('linear.weight')!.slice(1)).toEqual((await values(m, 'linear.weight')).slice(1).map(Math.fround));
  });
});

describe('missing and mismatched tensors: the block is refused by name', () => {
  it('a BatchNorm without running_mean', async () => {
    const m = await load(TINY);
    remove(m, 'stage1.0.rbr_1x1.bn.running_mean');
    const e = await refusal(m);
    expect([e.block, e.reason]).toEqual(['stage1.0', 'stage1.0.rbr_1x1.conv has no complete BatchNorm']);
    expect(buildStructure(m).warnings).toContainEqual({ block: 'stage1.0', message: 'stage1.0.rbr_1x1.bn: BatchNorm tensors missing: running_mean' });
  });

  it('a MobileOne branch without its BatchNorm', async () => {
    const m = await load('models/mobileone_train.pth');
    for (const p of ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']) remove(m, `stage3.0.rbr_conv.1.bn.${p}`);
    const e = await refusal(m);
    expect([e.block, e.reason]).toEqual(['stage3.0', 'stage3.0.rbr_conv.1.conv has no complete BatchNorm']);
  });

  it('a 1×1 branch with one output channel fewer than the k×k branch', async () => {
    const m = await load(TINY);
    reshape(m, 'stage1.0.rbr_1x1.conv.weight', [7, 8, 1, 1], (old) => old.slice(0, 56));
    const e = await refusal(m);
    expect([e.block, e.reason]).toEqual(['stage1.0', 'stage1.0.rbr_1x1.conv weight [7, 8, 1, 1] does not match 8×8']);
  });

  it('a BatchNorm vector one entry short', async () => {
    const m = await load(TINY);
    reshape(m, 'stage2.0.rbr_dense.bn.running_var', [15], (old) => old.slice(0, 15));
    const e = await refusal(m);
    expect([e.block, e.reason]).toEqual(['stage2.0', 'stage2.0.rbr_dense.bn.running_var has 15 values, expected 16']);
  });

  it('an even k×k kernel', async () => {
    const m = await load(TINY);
    reshape(m, 'stage2.1.rbr_dense.conv.weight', [16, 16, 4, 4]);
    const e = await refusal(m);
    expect([e.block, e.reason]).toEqual(['stage2.1', 'kernel 4×4 is even: a smaller kernel cannot be centred in it']);
  });

  it('a kernel that is not square', async () => {
    const m = await load(TINY);
    reshape(m, 'stage3.0.rbr_dense.conv.weight', [32, 16, 3, 1]);
    const e = await refusal(m);
    expect([e.block, e.reason]).toEqual(['stage3.0', 'stage3.0.rbr_dense.conv kernel 3×1 cannot be centred in 3×3']);
  });

  for (const [attribute, value, reason] of [
    ['padding', [0, 0], 'padding 0 with kernel 3: the 1×1 and identity branches would not align with the k×k branch'],
    ['dilation', [2, 2], 'dilation 2: branches with different receptive fields cannot be summed'],
    ['groups', 3, 'groups 3 does not divide in_channels 16'],
  ] as const) {
    it(`a pickled module whose k×k conv has ${attribute} ${JSON.stringify(value)}`, async () => {
      const m = await load('models/repvgg_full_module.pt');
      m.modules!.find((x) => x.path === 'stage2.1.rbr_dense.conv')!.attributes[attribute] = value;
      const e = await refusal(m);
      expect([e.block, e.reason]).toEqual(['stage2.1', reason]);
    });
  }
});

/* Gaps the fuzzer found (bench-results/fuzz.json), now refused. */
describe('conversion refuses what it cannot make exact', () => {
  it('an identity BatchNorm missing running_var: the block is refused, not fused without its identity', async () => {
    const m = await load(TINY);
    remove(m, 'stage2.1.rbr_identity.running_var');
    const e = await refusal(m);
    expect(e.block).toBe('stage2.1');
  });

  it('a block without its k×k conv weight: refused, not left unconverted without a word', async () => {
    const m = await load(TINY);
    remove(m, 'stage2.1.rbr_dense.conv.weight');
    const e = await refusal(m);
    expect(e.block).toBe('stage2.1');
  });

  it('finite weights whose fused values pass the float32 range: refused, not written as Infinity', async () => {
    const m = await load(TINY);
    setValue(m, 'stage2.1.rbr_dense.bn.weight', 0, 3e38);
    setValue(m, 'stage2.1.rbr_dense.bn.running_var', 0, 1e-6);
    const e = await refusal(m);
    expect(e.block).toBe('stage2.1');
  });

  it('integer conv weights: refused with a FusionError, not a plain Error from the encoder', async () => {
    const m = await load(TINY);
    replace(m, 'stage2.1.rbr_dense.conv.weight', (t) => new Tensor(t.name, 'int32', t.shape, () => t.readBytes()));
    const e = await refusal(m);
    expect(e.block).toBe('stage2.1');
  });
});
