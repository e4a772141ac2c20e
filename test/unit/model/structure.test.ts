import { describe, expect, it } from 'vitest';
import { buildStructureFromTensors } from '../../../src/core/model/buildStructure';
import { allBlocks } from '../../../src/core/model/structure';
import { upstreamRepvggMetas } from './syntheticStateDicts';

const A0 = { blocks: [2, 4, 14, 1], widths: [48, 48, 96, 192, 1280] };
const B1G4 = { blocks: [4, 6, 16, 1], widths: [64, 128, 256, 512, 2048], groupsAt: (l: number) => (l % 2 === 0 && l <= 26 ? 4 : 1) };

describe('structure of an upstream RepVGG state dict', () => {
  const s = buildStructureFromTensors('torch-zip', upstreamRepvggMetas(A0));

  it('finds stage0 and stages 1-4 with 1, 2, 4, 14, 1 blocks and recognises RepVGG-A0', () => {
    expect(s.family).toBe('repvgg');
    expect(s.architecture).toBe('RepVGG-A0');
    expect(s.form).toBe('train');
    expect(s.stages.map((st) => [st.name, st.blocks.length])).toEqual([
      ['stage0', 1],
      ['stage1', 2],
      ['stage2', 4],
      ['stage3', 14],
      ['stage4', 1],
    ]);
    expect(s.other).toEqual(['linear.weight', 'linear.bias']);
    expect(s.warnings).toEqual([]);
  });

  it('puts the identity branch only where in == out and stride 1, and says how stride was found', () => {
    const blocks = allBlocks(s);
    const b = (n: string) => blocks.find((x) => x.name === n)!;
    expect(b('stage1.0')).toMatchObject({ inChannels: 48, outChannels: 48, stride: 2, strideSource: 'stage-convention', kernel: 3, groups: 1 });
    expect(b('stage1.0').branches.map((x) => x.role)).toEqual(['dense', 'oneByOne']);
    expect(b('stage1.1')).toMatchObject({ stride: 1, strideSource: 'identity-rule' });
    expect(b('stage1.1').branches.map((x) => x.role)).toEqual(['dense', 'oneByOne', 'identity']);
    expect(b('stage2.0')).toMatchObject({ inChannels: 48, outChannels: 96, stride: 2 });
  });

  it('counts parameters before and after fusion', () => {
    const b = allBlocks(s).find((x) => x.name === 'stage1.1')!;
    // dense 48*48*9 + 1x1 48*48 + three BN (gamma, beta) pairs of 48
    expect(b.params.train).toBe(48 * 48 * 9 + 48 * 48 + 3 * 2 * 48);
    expect(b.params.deploy).toBe(48 * 48 * 9 + 48);
    expect(s.params.total - s.params.afterFusion).toBe(allBlocks(s).reduce((n, x) => n + x.params.train - x.params.deploy, 0));
  });
});

describe('recognition and inference', () => {
  it('recognises grouped B1g4, taking groups from the identity BN', () => {
    const s = buildStructureFromTensors('torch-zip', upstreamRepvggMetas(B1G4));
    expect(s.architecture).toBe('RepVGG-B1g4');
    // layer 2 = stage1.1 (identity present); layer 11 = stage3.0 is not grouped
    expect(allBlocks(s).find((b) => b.name === 'stage1.1')).toMatchObject({ groups: 4, groupsSource: 'identity-bn', inChannels: 128 });
    expect(allBlocks(s).find((b) => b.name === 'stage3.0')).toMatchObject({ groups: 1, inChannels: 256 });
  });

  it('infers groups of a grouped block without identity from the previous block, and marks it inferred', () => {
    // layer 11 = stage3.0: stride 2, channels change, so only the chain tells its groups
    const s = buildStructureFromTensors('torch-zip', upstreamRepvggMetas({ ...B1G4, groupsAt: (l) => (l === 11 ? 2 : 1) }));
    expect(allBlocks(s).find((b) => b.name === 'stage3.0')).toMatchObject({ groups: 2, groupsSource: 'chain', inChannels: 256 });
    expect(s.architecture).toBe('custom');
  });

  it('reads a deploy-form model as deploy and still recognises it', () => {
    const s = buildStructureFromTensors('torch-zip', upstreamRepvggMetas({ ...A0, deploy: true }));
    expect(s.form).toBe('deploy');
    expect(s.architecture).toBe('RepVGG-A0');
    expect(s.params.total).toBe(s.params.afterFusion);
  });

  it('recognises D2se only when SE is present', () => {
    const d2 = { blocks: [8, 14, 24, 1], widths: [64, 160, 320, 640, 2560] };
    expect(buildStructureFromTensors('torch-zip', upstreamRepvggMetas({ ...d2, se: true })).architecture).toBe('RepVGG-D2se');
    expect(buildStructureFromTensors('torch-zip', upstreamRepvggMetas(d2)).architecture).toBe('custom');
  });

  it('warns when a mid-stage block with in == out has no identity branch', () => {
    const metas = upstreamRepvggMetas(A0).filter((t) => !t.name.startsWith('stage2.2.rbr_identity'));
    const s = buildStructureFromTensors('torch-zip', metas);
    const block = allBlocks(s).find((b) => b.name === 'stage2.2')!;
    expect(block.stride).toBeNull();
    expect(s.warnings).toEqual([{ block: 'stage2.2', message: expect.stringContaining('no identity branch') }]);
    expect(s.architecture).toBe('RepVGG-A0');
  });

  it('takes stride from module attributes over every inference', () => {
    const metas = upstreamRepvggMetas(A0);
    const s = buildStructureFromTensors('torch-zip', metas, [
      { path: 'stage1.0.rbr_dense.conv', className: 'torch.nn.modules.conv.Conv2d', attributes: { stride: [1, 1], groups: 1, in_channels: 48 } },
    ]);
    expect(allBlocks(s).find((b) => b.name === 'stage1.0')).toMatchObject({ stride: 1, strideSource: 'attribute' });
  });

  it('flags an identity branch on a block whose channels change', () => {
    const metas = upstreamRepvggMetas(A0).map((t) => (t.name.startsWith('stage2.1.rbr_identity') && t.shape.length === 1 ? { ...t, shape: [48] } : t));
    const s = buildStructureFromTensors('torch-zip', metas);
    expect(s.warnings.some((w) => w.block === 'stage2.1' && w.message.includes('cannot be added'))).toBe(true);
  });
});
