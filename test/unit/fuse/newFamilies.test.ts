import { describe, expect, it } from 'vitest';
import type { ModuleInfo } from '../../../src/core/formats/modelFile';
import { fuseBlock, fuseBlockEncoded, FusionError } from '../../../src/core/fuse/fuseBlock';
import { buildStructureFromTensors, type StructureOptions } from '../../../src/core/model/buildStructure';
import { allBlocks, type Block } from '../../../src/core/model/structure';
import { qarepvggBlock, seededRandom, Synth, timmMobileOneBlock, type BlockSpec, type MobileOneSpec, type SynthTensor } from '../model/synthetic';
import { blockForward, relMax } from './blockForward';
import { batchNorm, conv2d } from './reference';
import * as peer from './peerReference';

const valuesOf = (tensors: readonly SynthTensor[]) => new Map(tensors.map((t) => [t.name, t.values]));
const loader = (tensors: readonly SynthTensor[]) => {
  const m = valuesOf(tensors);
  return async (n: string) => m.get(n)!;
};

function oneBlock(tensors: readonly SynthTensor[], options: StructureOptions = {}, modules: ModuleInfo[] = []): Block {
  const blocks = allBlocks(buildStructureFromTensors('torch-zip', tensors, modules, options));
  expect(blocks).toHaveLength(1);
  return blocks[0];
}

function input(channels: number, hw: number, seed: number): Float64Array {
  const r = seededRandom(seed);
  return Float64Array.from({ length: channels * hw * hw }, () => r() * 2 - 1);
}

/** The fused conv (and, with 'keep', the post BN after it) applied to x, in float64. */
function fusedForward(
  block: Block,
  fused: { weight: Float64Array; bias: Float64Array; shape: readonly number[] },
  x: Float64Array,
  hw: number,
  tensors: ReadonlyMap<string, Float64Array>,
  keep = false,
) {
  const r = conv2d(x, [block.inChannels, hw, hw], fused.weight, fused.shape, fused.bias, block.stride ?? 1, block.padding, block.groups);
  if (!keep || !block.postBn) return r;
  const bn = block.postBn;
  return {
    ...r,
    y: batchNorm(r.y, block.outChannels, {
      gamma: tensors.get(bn.weight)!,
      beta: tensors.get(bn.bias)!,
      mean: tensors.get(bn.mean)!,
      var: tensors.get(bn.var)!,
      eps: bn.eps,
    }),
  };
}

/** What a pickled model's dense conv says of groups and stride, which a state dict does not store. */
const convFacts = (spec: BlockSpec): ModuleInfo[] => [
  {
    path: `${spec.name}.rbr_dense.conv`,
    className: 'torch.nn.modules.conv.Conv2d',
    attributes: { groups: spec.groups ?? 1, stride: [spec.stride, spec.stride], in_channels: spec.cin },
  },
];

const QA_CASES: [string, BlockSpec, 'v1' | 'v2'][] = [
  ['v1, in == out: dense + bare 1×1 + bare identity, BN after', { name: 'b', cin: 8, cout: 8, stride: 1 }, 'v1'],
  ['v2, in == out: + 3×3 AvgPool', { name: 'b', cin: 8, cout: 8, stride: 1 }, 'v2'],
  ['v2, groups 2: AvgPool on channel c mod in/groups', { name: 'b', cin: 8, cout: 8, stride: 1, groups: 2 }, 'v2'],
  ['v2, depthwise', { name: 'b', cin: 6, cout: 6, stride: 1, groups: 6 }, 'v2'],
  ['v2, in ≠ out at stride 2: no identity, no AvgPool', { name: 'b', cin: 4, cout: 8, stride: 2 }, 'v2'],
];

describe('YOLOv6 QARepVGG: the fused conv equals the train block run as convolutions in float64', () => {
  it.each(QA_CASES)('%s', async (_, spec, version) => {
    const s = new Synth(11);
    qarepvggBlock(s, spec, version);
    const block = oneBlock(s.tensors, { qarepvgg: version }, convFacts(spec));
    // The structure must have found what the constructor made, or the comparison below proves nothing.
    const same = spec.cin === spec.cout && spec.stride === 1;
    expect(block.branches.map((b) => b.role)).toEqual(['dense', 'oneByOne', ...(same ? ['identity'] : []), ...(same && version === 'v2' ? ['avgPool'] : [])]);
    expect(block).toMatchObject({ stride: spec.stride, groups: spec.groups ?? 1, inChannels: spec.cin });
    expect(block.postBn).toBeDefined();

    const tensors = valuesOf(s.tensors);
    const hw = 7;
    const x = input(spec.cin, hw, 5);
    const want = blockForward(block, tensors, x, hw);

    const folded = await fuseBlock(block, loader(s.tensors), { postBn: 'fold' });
    expect(folded.postBn).toBe('fold');
    expect(folded.eps).toEqual({ 'b.rbr_dense.conv': 1e-3, 'b.bn': 1e-3 });
    const got = fusedForward(block, folded, x, hw, tensors);
    expect(got.shape).toEqual(want.shape);
    expect(relMax(want.y, got.y)).toBeLessThan(1e-13);

    // 'keep': the conv is the pre-BN sum; the BN applied after it gives the block again.
    const kept = await fuseBlock(block, loader(s.tensors), { postBn: 'keep' });
    expect(kept.postBn).toBe('keep');
    expect(kept.eps).toEqual({ 'b.rbr_dense.conv': 1e-3 });
    expect(relMax(want.y, fusedForward(block, kept, x, hw, tensors, true).y)).toBeLessThan(1e-13);
    // … and without that BN it is not the block: the BN matters.
    expect(relMax(want.y, fusedForward(block, kept, x, hw, tensors).y)).toBeGreaterThan(1e-2);
  });

  it('leaving the AvgPool out (v1 read for a v2 block) is measurably wrong', async () => {
    const s = new Synth(12);
    qarepvggBlock(s, { name: 'b', cin: 8, cout: 8, stride: 1 }, 'v2');
    const v2 = oneBlock(s.tensors, { qarepvgg: 'v2' });
    const v1 = oneBlock(s.tensors, { qarepvgg: 'v1' });
    const x = input(8, 7, 6);
    const want = blockForward(v2, valuesOf(s.tensors), x, 7);
    const wrong = fusedForward(v1, await fuseBlock(v1, loader(s.tensors), { postBn: 'fold' }), x, 7, valuesOf(s.tensors));
    expect(relMax(want.y, wrong.y)).toBeGreaterThan(1e-2);
  });

  it('puts 1/k² at every tap of input channel c mod (in/groups), and only there (YOLOv6 _avg_to_3x3_tensor)', async () => {
    const s = new Synth(13);
    const spec = { name: 'b', cin: 4, cout: 4, stride: 1, groups: 2 };
    qarepvggBlock(s, spec, 'v2');
    const v2 = oneBlock(s.tensors, { qarepvgg: 'v2' }, convFacts(spec));
    const v1 = oneBlock(s.tensors, { qarepvgg: 'v1' }, convFacts(spec));
    const a = await fuseBlock(v2, loader(s.tensors), { postBn: 'keep' });
    const b = await fuseBlock(v1, loader(s.tensors), { postBn: 'keep' });
    const diff = a.weight.map((v, i) => v - b.weight[i]);
    // [out 4, in/groups 2, 3, 3]: row c has 1/9 on all 9 taps of input c % 2.
    for (let c = 0; c < 4; c++) {
      for (let i = 0; i < 2; i++) {
        for (let t = 0; t < 9; t++) expect(diff[(c * 2 + i) * 9 + t]).toBeCloseTo(i === c % 2 ? 1 / 9 : 0, 15);
      }
    }
    expect(a.bias).toEqual(b.bias);
  });

  it('the float32 bytes fuseBlockEncoded writes are the float64 fusion rounded once, for both choices', async () => {
    const s = new Synth(14);
    const spec = { name: 'b', cin: 8, cout: 8, stride: 1, groups: 2 };
    qarepvggBlock(s, spec, 'v2');
    const block = oneBlock(s.tensors, { qarepvgg: 'v2' }, convFacts(spec));
    expect(block.branches.map((b) => b.role)).toEqual(['dense', 'oneByOne', 'identity', 'avgPool']);
    for (const postBn of ['fold', 'keep'] as const) {
      const exact = await fuseBlock(block, loader(s.tensors), { postBn });
      const load = async (n: string) => Float32Array.from(valuesOf(s.tensors).get(n)!);
      // The inputs as float32 (as a float32 file holds them), fused in float64 and rounded once.
      const ref = await fuseBlock(block, load, { postBn });
      const enc = await fuseBlockEncoded(block, load, 'float32', { postBn });
      expect(enc.postBn).toBe(postBn);
      const w = new Float32Array(enc.weight.buffer, enc.weight.byteOffset, enc.weight.length / 4);
      expect(Array.from(w)).toEqual(Array.from(Float32Array.from(ref.weight)));
      expect(relMax(exact.weight, w)).toBeLessThan(1e-6);
    }
  });
});

describe('fusion refuses what it cannot do exactly', () => {
  const s = new Synth(15);
  qarepvggBlock(s, { name: 'b', cin: 8, cout: 8, stride: 1 }, 'v2');

  it('a block with a BN after the sum, when the caller did not say whether to fold it', async () => {
    const block = oneBlock(s.tensors, { qarepvgg: 'v2' });
    await expect(fuseBlock(block, loader(s.tensors))).rejects.toThrow(FusionError);
    await expect(fuseBlock(block, loader(s.tensors))).rejects.toThrow(/BatchNorm after the sum of its branches.*did not say whether to fold it/);
    await expect(fuseBlockEncoded(block, loader(s.tensors), 'float32')).rejects.toThrow(/did not say whether to fold it/);
  });

  it('a QARepVGG block whose post BN is incomplete (it would fuse to another function)', async () => {
    const block = oneBlock(
      s.tensors.filter((t) => t.name !== 'b.bn.running_var'),
      { qarepvgg: 'v2' },
    );
    await expect(fuseBlock(block, loader(s.tensors), { postBn: 'fold' })).rejects.toThrow(/has no complete BatchNorm after the sum of its branches \(bn\)/);
  });

  it('an AvgPool whose window is unknown, or larger than the kernel', async () => {
    const block = oneBlock(s.tensors, { qarepvgg: 'v2' });
    const pool = block.branches.find((b) => b.role === 'avgPool')!;
    delete pool.poolKernel;
    await expect(fuseBlock(block, loader(s.tensors), { postBn: 'fold' })).rejects.toThrow(/b\.rbr_avg: the AvgPool window is not known/);
    pool.poolKernel = 5;
    await expect(fuseBlock(block, loader(s.tensors), { postBn: 'fold' })).rejects.toThrow(/a 5×5 AvgPool cannot be centred in 3×3/);
  });

  it('a post BN behind squeeze-excitation cannot be folded', async () => {
    const block = oneBlock(s.tensors, { qarepvgg: 'v2' });
    block.se = { down: 'x', up: 'y' };
    await expect(fuseBlock(block, loader(s.tensors), { postBn: 'fold' })).rejects.toThrow(
      /squeeze-excitation between the sum of its branches and the BatchNorm/,
    );
  });
});

const MO_CASES: [string, MobileOneSpec][] = [
  ['depthwise 3×3, three k×k branches, scale branch, identity', { name: 'b', cin: 6, cout: 6, stride: 1, groups: 6, kernel: 3, branches: 3 }],
  ['depthwise 3×3 at stride 2 (no identity)', { name: 'b', cin: 6, cout: 6, stride: 2, groups: 6, kernel: 3, branches: 2 }],
  ['pointwise 1×1, four branches, identity, no scale branch', { name: 'b', cin: 5, cout: 5, stride: 1, kernel: 1, branches: 4 }],
  ['pointwise 1×1 widening (no identity)', { name: 'b', cin: 4, cout: 6, stride: 1, kernel: 1, branches: 2 }],
  ['dense 3×3 stem-like', { name: 'b', cin: 3, cout: 8, stride: 2, kernel: 3, branches: 1 }],
];

describe('timm MobileOne: the fused conv equals the train block', () => {
  it.each(MO_CASES)('%s', async (_, spec) => {
    const s = new Synth(21);
    timmMobileOneBlock(s, spec);
    const blocks = allBlocks(buildStructureFromTensors('torch-zip', s.tensors));
    expect(blocks).toHaveLength(1);
    const block = blocks[0];
    expect(block.family).toBe('timm-mobileone');
    expect(block.branches.filter((b) => b.role === 'dense')).toHaveLength(spec.branches);
    // A lone depthwise block without identity has nothing to take its groups from: the test knows them.
    block.groups = spec.groups ?? 1;
    block.inChannels = spec.cin;
    block.stride = spec.stride;
    const tensors = valuesOf(s.tensors);
    const hw = 7;
    const x = input(spec.cin, hw, 8);
    const want = blockForward(block, tensors, x, hw);
    const fused = await fuseBlock(block, loader(s.tensors));
    expect(fused.postBn).toBeUndefined();
    expect(fused.shape).toEqual([spec.cout, spec.cin / (spec.groups ?? 1), spec.kernel, spec.kernel]);
    expect(relMax(want.y, fusedForward(block, fused, x, hw, tensors).y)).toBeLessThan(1e-13);
  });
});

/** The parameter formula of peerReference.ts's script: the t-th tensor of the block, element i. */
function formulaTensors(names: [string, number[], 'w' | 'g' | 'b' | 'm' | 'v'][]): SynthTensor[] {
  const kinds = {
    w: (x: number) => 0.5 * x,
    g: (x: number) => 1 + 0.4 * x,
    b: (x: number) => 0.1 * x,
    m: (x: number) => 0.2 * x,
    v: (x: number) => 1 + 0.5 * x,
  };
  return names.map(([name, shape, kind], t) => ({
    name,
    shape,
    dtype: 'float64',
    values: Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => kinds[kind](Math.sin(1.7 * i + 0.9 * t + 0.3))),
  }));
}

const bnOf = (m: string, c: number): [string, number[], 'g' | 'b' | 'm' | 'v'][] => [
  [`${m}.weight`, [c], 'g'],
  [`${m}.bias`, [c], 'b'],
  [`${m}.running_mean`, [c], 'm'],
  [`${m}.running_var`, [c], 'v'],
];

describe("the peers' own re-parameterization, in float64 (numbers from torch, see peerReference.ts)", () => {
  const qarep = (cin: number, cout: number, groups: number) =>
    formulaTensors([
      ['b.rbr_dense.conv.weight', [cout, cin / groups, 3, 3], 'w'],
      ...bnOf('b.rbr_dense.bn', cout),
      ['b.rbr_1x1.weight', [cout, cin / groups, 1, 1], 'w'],
      ...bnOf('b.bn', cout),
    ]);

  it.each([
    ['QARepVGGBlock 2→2', qarep(2, 2, 1), 'v1', peer.QA_V1_KEEP_W, peer.QA_V1_KEEP_B, peer.QA_V1_FOLD_W, peer.QA_V1_FOLD_B],
    ['QARepVGGBlockV2 2→2', qarep(2, 2, 1), 'v2', peer.QA_V2_KEEP_W, peer.QA_V2_KEEP_B, peer.QA_V2_FOLD_W, peer.QA_V2_FOLD_B],
    ['QARepVGGBlockV2 4→4, groups 2', qarep(4, 4, 2), 'v2', peer.QA_V2_G2_KEEP_W, peer.QA_V2_G2_KEEP_B, peer.QA_V2_G2_FOLD_W, peer.QA_V2_G2_FOLD_B],
  ] as const)(
    "%s: 'keep' is YOLOv6's switch_to_deploy (rbr_reparam), 'fold' its _fuse_extra_bn_tensor of bn",
    async (_, tensors, version, keepW, keepB, foldW, foldB) => {
      // A state dict does not store groups; the dense conv's attributes (as a pickled module has them) do.
      const groups = tensors[0].shape[0] / tensors[0].shape[1];
      const block = oneBlock(tensors, { qarepvgg: version }, [
        { path: 'b.rbr_dense.conv', className: 'torch.nn.modules.conv.Conv2d', attributes: { groups, stride: [1, 1] } },
      ]);
      expect(block.branches.map((b) => b.role)).toEqual(['dense', 'oneByOne', 'identity', ...(version === 'v2' ? ['avgPool'] : [])]);
      const keep = await fuseBlock(block, loader(tensors), { postBn: 'keep' });
      const fold = await fuseBlock(block, loader(tensors), { postBn: 'fold' });
      expect(keep.weight).toHaveLength(keepW.length);
      expect(relMax(Float64Array.from(keepW), keep.weight)).toBeLessThan(1e-14);
      expect(relMax(Float64Array.from(keepB), keep.bias)).toBeLessThan(1e-14);
      expect(relMax(Float64Array.from(foldW), fold.weight)).toBeLessThan(1e-14);
      expect(relMax(Float64Array.from(foldB), fold.bias)).toBeLessThan(1e-14);
    },
  );

  it("timm MobileOneBlock, depthwise with three k×k branches, scale and identity: timm's reparameterize", async () => {
    const kxk = [0, 1, 2].flatMap((i): [string, number[], 'w' | 'g' | 'b' | 'm' | 'v'][] => [
      [`b.conv_kxk.${i}.conv.weight`, [2, 1, 3, 3], 'w'],
      ...bnOf(`b.conv_kxk.${i}.bn`, 2),
    ]);
    const tensors = formulaTensors([...kxk, ['b.conv_scale.conv.weight', [2, 1, 1, 1], 'w'], ...bnOf('b.conv_scale.bn', 2), ...bnOf('b.identity', 2)]);
    const block = oneBlock(tensors);
    expect(block).toMatchObject({ family: 'timm-mobileone', groups: 2, groupsSource: 'identity-bn' });
    const fused = await fuseBlock(block, loader(tensors));
    expect(relMax(Float64Array.from(peer.MO_DW_W), fused.weight)).toBeLessThan(1e-14);
    expect(relMax(Float64Array.from(peer.MO_DW_B), fused.bias)).toBeLessThan(1e-14);
  });

  it("timm MobileOneBlock, pointwise 2→3 with two 1×1 branches: timm's reparameterize", async () => {
    const tensors = formulaTensors(
      [0, 1].flatMap((i): [string, number[], 'w' | 'g' | 'b' | 'm' | 'v'][] => [
        [`b.conv_kxk.${i}.conv.weight`, [3, 2, 1, 1], 'w'],
        ...bnOf(`b.conv_kxk.${i}.bn`, 3),
      ]),
    );
    const fused = await fuseBlock(oneBlock(tensors), loader(tensors));
    expect(fused.shape).toEqual([3, 2, 1, 1]);
    expect(relMax(Float64Array.from(peer.MO_PW_W), fused.weight)).toBeLessThan(1e-14);
    expect(relMax(Float64Array.from(peer.MO_PW_B), fused.bias)).toBeLessThan(1e-14);
  });
});
