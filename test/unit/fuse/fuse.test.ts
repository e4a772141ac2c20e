import { describe, expect, it } from 'vitest';
import { fuseBlock, fuseBlockEncoded, fuseBlockInPieces, FusionError } from '../../../src/core/fuse/fuseBlock';
import type { Values } from '../../../src/core/fuse/kernels';
import type { DType } from '../../../src/core/formats/tensor';
import type { Block, Branch } from '../../../src/core/model/structure';
import { batchNorm, conv2d, seededRandom } from './reference';

interface Case {
  channelsIn: number;
  channelsOut: number;
  groups: number;
  stride: number;
  kernel: number;
  oneByOne: boolean;
  identity: boolean;
  denseBranches?: number;
  eps?: number;
}

/** A synthetic train-form block with random weights and BN statistics, plus its tensors. */
function makeBlock(c: Case, seed = 1) {
  const rand = seededRandom(seed);
  const tensors = new Map<string, Float64Array>();
  const fill = (name: string, n: number, lo = -1, hi = 1) =>
    tensors.set(
      name,
      Float64Array.from({ length: n }, () => lo + (hi - lo) * rand()),
    );
  const ipg = c.channelsIn / c.groups;
  const eps = c.eps ?? 1e-5;
  const bn = (module: string) => {
    fill(`${module}.weight`, c.channelsOut, 0.5, 1.5);
    fill(`${module}.bias`, c.channelsOut);
    fill(`${module}.running_mean`, c.channelsOut);
    fill(`${module}.running_var`, c.channelsOut, 0.2, 2);
    return {
      weight: `${module}.weight`,
      bias: `${module}.bias`,
      mean: `${module}.running_mean`,
      var: `${module}.running_var`,
      eps,
      epsSource: 'family-default' as const,
    };
  };
  const branches: Branch[] = [];
  for (let d = 0; d < (c.denseBranches ?? 1); d++) {
    const shape = [c.channelsOut, ipg, c.kernel, c.kernel];
    fill(
      `dense${d}.conv.weight`,
      shape.reduce((a, b) => a * b),
    );
    branches.push({ role: 'dense', module: `dense${d}.conv`, convWeight: `dense${d}.conv.weight`, weightShape: shape, bn: bn(`dense${d}.bn`) });
  }
  if (c.oneByOne) {
    fill('one.conv.weight', c.channelsOut * ipg);
    branches.push({ role: 'oneByOne', module: 'one.conv', convWeight: 'one.conv.weight', weightShape: [c.channelsOut, ipg, 1, 1], bn: bn('one.bn') });
  }
  if (c.identity) branches.push({ role: 'identity', module: 'id', bn: bn('id') });
  const block: Block = {
    name: 'test.block',
    family: 'repvgg',
    stage: 'test',
    inChannels: c.channelsIn,
    outChannels: c.channelsOut,
    kernel: c.kernel,
    stride: c.stride,
    strideSource: 'attribute',
    padding: Math.floor(c.kernel / 2),
    paddingSource: 'default',
    groups: c.groups,
    groupsSource: 'attribute',
    dilation: 1,
    branches,
    form: 'train',
    params: { train: 0, deploy: 0 },
    tensors: [...tensors.keys()],
    warnings: [],
  };
  return { block, tensors, rand };
}

/** What the train-form block computes (before its activation), branch by branch. */
function trainForward(block: Block, tensors: Map<string, Float64Array>, x: Float64Array, hw: number, eps?: number) {
  const get = (n: string) => tensors.get(n)!;
  let sum: Float64Array | undefined;
  let shape: [number, number, number] = [0, 0, 0];
  for (const b of block.branches) {
    const bnStats = { gamma: get(b.bn!.weight), beta: get(b.bn!.bias), mean: get(b.bn!.mean), var: get(b.bn!.var), eps: eps ?? b.bn!.eps };
    let y: Float64Array;
    if (b.role === 'identity') {
      y = batchNorm(x, block.outChannels, bnStats);
      shape = [block.outChannels, hw, hw];
    } else {
      const k = b.weightShape![2];
      const r = conv2d(x, [block.inChannels, hw, hw], get(b.convWeight!), b.weightShape!, null, block.stride!, Math.floor(k / 2), block.groups);
      y = batchNorm(r.y, block.outChannels, bnStats);
      shape = r.shape;
    }
    sum = sum ? sum.map((v, i) => v + y[i]) : y;
  }
  return { y: sum!, shape };
}

const CASES: [string, Case][] = [
  ['groups 1, identity present', { channelsIn: 8, channelsOut: 8, groups: 1, stride: 1, kernel: 3, oneByOne: true, identity: true }],
  ['groups 1, stride 2, no identity', { channelsIn: 4, channelsOut: 8, groups: 1, stride: 2, kernel: 3, oneByOne: true, identity: false }],
  ['groups 2, identity present', { channelsIn: 8, channelsOut: 8, groups: 2, stride: 1, kernel: 3, oneByOne: true, identity: true }],
  ['groups 4, identity present', { channelsIn: 8, channelsOut: 8, groups: 4, stride: 1, kernel: 3, oneByOne: true, identity: true }],
  ['depthwise, identity present', { channelsIn: 6, channelsOut: 6, groups: 6, stride: 1, kernel: 3, oneByOne: true, identity: true }],
  [
    '1×1-only block (pointwise, over-parameterized)',
    { channelsIn: 6, channelsOut: 6, groups: 1, stride: 1, kernel: 1, oneByOne: false, identity: true, denseBranches: 3 },
  ],
  [
    '5×5 with 1×1 and three dense branches (MobileOne)',
    { channelsIn: 4, channelsOut: 4, groups: 1, stride: 1, kernel: 5, oneByOne: true, identity: true, denseBranches: 3 },
  ],
  ['eps 1e-3 (YOLOv7)', { channelsIn: 8, channelsOut: 8, groups: 1, stride: 1, kernel: 3, oneByOne: true, identity: true, eps: 1e-3 }],
];

describe('fuseBlock equals the train-form block', () => {
  for (const [name, c] of CASES) {
    it(name, async () => {
      const { block, tensors, rand } = makeBlock(c);
      const hw = 7;
      const x = Float64Array.from({ length: c.channelsIn * hw * hw }, () => rand() * 2 - 1);
      const fused = await fuseBlock(block, async (n) => tensors.get(n)!);
      expect(fused.shape).toEqual([c.channelsOut, c.channelsIn / c.groups, c.kernel, c.kernel]);
      const want = trainForward(block, tensors, x, hw);
      const got = conv2d(x, [c.channelsIn, hw, hw], fused.weight, fused.shape, fused.bias, c.stride, Math.floor(c.kernel / 2), c.groups);
      expect(got.shape).toEqual(want.shape);
      const maxAbs = got.y.reduce((m, v, i) => Math.max(m, Math.abs(v - want.y[i])), 0);
      expect(maxAbs).toBeLessThan(1e-12);
    });
  }

  it('uses the eps override, and a wrong eps is measurably different', async () => {
    const c = CASES[0][1];
    const { block, tensors } = makeBlock(c);
    const right = await fuseBlock(block, async (n) => tensors.get(n)!);
    const overridden = await fuseBlock(block, async (n) => tensors.get(n)!, { eps: 1e-1 });
    expect(Object.values(overridden.eps)).toEqual([1e-1, 1e-1, 1e-1]);
    const diff = right.bias.reduce((m, v, i) => Math.max(m, Math.abs(v - overridden.bias[i])), 0);
    expect(diff).toBeGreaterThan(1e-3);
  });
});

describe('fuseBlockEncoded into a branch array the caller gives up', () => {
  for (const [name, c] of CASES) {
    it(`writes the same float32 bytes as into a fresh buffer: ${name}`, async () => {
      const { block, tensors } = makeBlock(c);
      const handedOut: Float32Array[] = [];
      const load = async (n: string) => {
        const values = Float32Array.from(tensors.get(n)!);
        handedOut.push(values);
        return values;
      };
      const fresh = await fuseBlockEncoded(block, load, 'float32');
      const scratchTarget = {
        allocate: (): Uint8Array => {
          throw new Error('the k×k branch array should have been reused');
        },
        mayOverwrite: (values: ArrayBufferView) => handedOut.includes(values as Float32Array),
      };
      const inPlace = await fuseBlockEncoded(block, load, 'float32', {}, scratchTarget);
      expect(handedOut.some((a) => a.buffer === inPlace.weight.buffer)).toBe(true);
      expect(Buffer.from(inPlace.weight).equals(Buffer.from(fresh.weight))).toBe(true);
      expect(Buffer.from(inPlace.bias).equals(Buffer.from(fresh.bias))).toBe(true);
    });
  }

  it('allocates when the output dtype differs from the branch arrays', async () => {
    const { block, tensors } = makeBlock(CASES[0][1]);
    const load = async (n: string) => Float32Array.from(tensors.get(n)!);
    let allocated = 0;
    const f16 = await fuseBlockEncoded(block, load, 'float16', {}, { allocate: (n) => new Uint8Array((allocated = n)), mayOverwrite: () => true });
    expect(allocated).toBe(f16.weight.length);
    expect(f16.weight.length).toBe(8 * 8 * 9 * 2);
  });

  it('leaves arrays it may not overwrite alone', async () => {
    const { block, tensors } = makeBlock(CASES[0][1]);
    const kept = new Map([...tensors].map(([n, v]) => [n, Float32Array.from(v)]));
    const before = new Map([...kept].map(([n, v]) => [n, v.slice()]));
    let allocated = 0;
    await fuseBlockEncoded(block, async (n) => kept.get(n)!, 'float32', {}, { allocate: (n) => new Uint8Array((allocated = n)), mayOverwrite: () => false });
    expect(allocated).toBe(8 * 8 * 9 * 4);
    for (const [n, v] of kept) expect(v).toEqual(before.get(n));
  });
});

/** Each conv weight read front to back in float32 windows, each a new array, with what was read and released recorded. */
function windowedKernels(tensors: Map<string, Float64Array>) {
  const handedOut: Values[] = [];
  const released: Values[] = [];
  const read = new Map<string, number>();
  const kernels = (name: string) => {
    const all = Float32Array.from(tensors.get(name)!);
    let at = 0;
    return {
      next: async (count: number) => {
        const window = all.slice(at, at + count);
        at += count;
        read.set(name, at);
        handedOut.push(window);
        return window;
      },
    };
  };
  const target = {
    allocate: (n: number) => new Uint8Array(n),
    mayOverwrite: (values: Values) => handedOut.includes(values),
    release: (values: Values) => released.push(values),
  };
  return { kernels, target, handedOut, released, read };
}

async function concatenated(pieces: AsyncIterable<Uint8Array>): Promise<{ bytes: Buffer; sizes: number[] }> {
  const all: Uint8Array[] = [];
  for await (const piece of pieces) all.push(new Uint8Array(piece));
  return { bytes: Buffer.concat(all), sizes: all.map((p) => p.length) };
}

describe('fuseBlockInPieces: the kernel read and fused a few output channels at a time', () => {
  const load = (tensors: Map<string, Float64Array>) => async (n: string) => Float32Array.from(tensors.get(n)!);
  for (const [name, c] of CASES) {
    for (const dtype of ['float32', 'float16'] as DType[]) {
      it(`writes the bytes of the whole fusion, in pieces of 1, 3 and all channels (${dtype}): ${name}`, async () => {
        const { block, tensors } = makeBlock(c);
        const whole = await fuseBlockEncoded(block, load(tensors), dtype);
        const rowBytes = (c.channelsIn / c.groups) * c.kernel * c.kernel * (dtype === 'float32' ? 4 : 2);
        for (const rows of [1, 3, c.channelsOut]) {
          const { kernels, target, handedOut, released, read } = windowedKernels(tensors);
          const fused = await fuseBlockInPieces(block, load(tensors), kernels, dtype, rows * rowBytes, {}, target);
          const { bytes, sizes } = await concatenated(fused.weight);
          expect(bytes.equals(Buffer.from(whole.weight))).toBe(true);
          expect(Buffer.from(fused.bias).equals(Buffer.from(whole.bias))).toBe(true);
          expect(fused.shape).toEqual(whole.shape);
          expect(sizes.length).toBe(Math.ceil(c.channelsOut / rows));
          // Every conv weight was read exactly to its end; every window went back but those that became a piece.
          for (const b of block.branches.filter((x) => x.convWeight)) expect(read.get(b.convWeight!)).toBe(tensors.get(b.convWeight!)!.length);
          const inPlace = dtype === 'float32' ? sizes.length : 0;
          expect(released.length).toBe(handedOut.length - inPlace);
        }
      });
    }
  }

  it('names the non-finite weight by its index in the whole tensor, not in its window', async () => {
    const { block, tensors } = makeBlock(CASES[0][1]);
    const index = 5 * 8 * 9 + 7; // output channel 5
    tensors.get('dense0.conv.weight')![index] = NaN;
    const { kernels, target } = windowedKernels(tensors);
    const fused = await fuseBlockInPieces(block, load(tensors), kernels, 'float32', 8 * 9 * 4, {}, target);
    await expect(concatenated(fused.weight)).rejects.toThrow(`test.block: dense0.conv.weight contains NaN at index ${index}`);
  });
});

describe('fuseBlock refuses what it cannot fuse exactly', () => {
  const base = CASES[0][1];
  const reject = async (mutate: (b: Block, t: Map<string, Float64Array>) => void, reason: RegExp) => {
    const { block, tensors } = makeBlock(base);
    mutate(block, tensors);
    const error = await fuseBlock(block, async (n) => tensors.get(n)!).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FusionError);
    expect((error as FusionError).message).toMatch(/^test\.block: /);
    expect((error as FusionError).message).toMatch(reason);
  };
  it('NaN weights', () => reject((_, t) => (t.get('dense0.conv.weight')![5] = NaN), /NaN/));
  it('Inf in BN', () => reject((_, t) => (t.get('one.bn.weight')![1] = Infinity), /Infinity/));
  it('negative running_var', () => reject((_, t) => (t.get('id.running_var')![2] = -1), /running_var \+ eps must be positive/));
  it('even kernel', () => reject((b) => (b.kernel = 4), /even/));
  it('dilation', () => reject((b) => (b.dilation = 2), /dilation 2/));
  it('padding that breaks alignment', () => reject((b) => (b.padding = 0), /padding 0/));
  it('shape mismatch between branches', () => reject((b) => (b.branches[1].weightShape = [4, 8, 1, 1]), /does not match/));
  it('missing BN', () => reject((b) => (b.branches[1].bn = undefined), /no complete BatchNorm/));
});
