import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectFile } from '../../../src/core/inspect';
import { blockDescription } from '../../../src/core/model/describe';
import { allBlocks, type Block } from '../../../src/core/model/structure';

/** Structures of the committed fixtures, which make_fixtures.py builds with real torch modules. */
const model = (name: string) => path.join(__dirname, '..', '..', 'fixtures', 'models', name);
const byName = (blocks: Block[], name: string) => blocks.find((b) => b.name === name)!;
const roles = (b: Block) => b.branches.map((x) => x.role);

describe('families found in real checkpoints', () => {
  it('upstream RepVGG: stages, branches and stage-convention strides, marked inferred', async () => {
    const { structure: s } = await inspectFile(model('repvgg_tiny_train.pth'));
    expect([s.family, s.form, s.architecture]).toEqual(['repvgg', 'train', 'custom']);
    expect(s.stages.map((st) => st.blocks.length)).toEqual([1, 1, 2, 2, 1]);
    const blocks = allBlocks(s);
    expect(blockDescription(byName(blocks, 'stage2.0'))).toBe('3×3 ✓ 1×1 ✓ id – · 8→16 s2?');
    expect(blockDescription(byName(blocks, 'stage2.1'))).toBe('3×3 ✓ 1×1 ✓ id ✓ · 16→16 s1?');
    expect(s.other).toEqual(['linear.weight', 'linear.bias']);
    expect(s.warnings).toEqual([]);
  });

  it('a full pickled module gives stride, groups and eps as facts', async () => {
    const { structure: s } = await inspectFile(model('repvgg_full_module.pt'));
    const b = byName(allBlocks(s), 'stage2.0');
    expect(b).toMatchObject({ stride: 2, strideSource: 'attribute', groupsSource: 'attribute', inChannels: 8, outChannels: 16 });
    expect(b.branches[0].bn).toMatchObject({ eps: 1e-5, epsSource: 'attribute' });
    expect(blockDescription(b)).toBe('3×3 ✓ 1×1 ✓ id – · 8→16 s2');
  });

  it('deploy form', async () => {
    const { structure: s } = await inspectFile(model('repvgg_tiny_deploy.pth'));
    expect(s.form).toBe('deploy');
    expect(allBlocks(s).every((b) => b.branches.length === 0 && b.deploy)).toBe(true);
    expect(s.params.total).toBe(s.params.afterFusion);
  });

  it('grouped convs: groups from the identity BN', async () => {
    const blocks = allBlocks((await inspectFile(model('repvgg_grouped_train.pth'))).structure);
    expect(byName(blocks, 'stage1.1')).toMatchObject({ groups: 2, groupsSource: 'identity-bn' });
    expect(byName(blocks, 'stage2.1')).toMatchObject({ groups: 4 });
  });

  it('SE blocks', async () => {
    const blocks = allBlocks((await inspectFile(model('repvgg_se_train.pth'))).structure);
    expect(blocks.every((b) => b.se)).toBe(true);
  });

  it('YOLOv7 RepConv inside a detector, with eps 1e-3 and SiLU family defaults', async () => {
    const { structure: s } = await inspectFile(model('yolov7_repconv_train_sd.pth'));
    expect(s.family).toBe('yolov7-repconv');
    expect(allBlocks(s).map((b) => [b.name, roles(b)])).toEqual([
      ['model.2', ['dense', 'oneByOne', 'identity']],
      ['model.3', ['dense', 'oneByOne']],
      ['model.5', ['dense', 'oneByOne', 'identity']],
    ]);
    // No stage convention for detectors: without attributes or an identity, stride is unknown.
    expect(byName(allBlocks(s), 'model.3')).toMatchObject({ stride: null, strideSource: 'unknown' });
    expect(allBlocks(s)[0].branches[0].bn?.eps).toBe(1e-3);
    expect(s.other.length).toBeGreaterThan(10);
  });

  it('timm byobnet RepVGG (safetensors)', async () => {
    const { structure: s, format } = await inspectFile(model('timm_repvgg_train.safetensors'));
    expect([format, s.family]).toEqual(['safetensors', 'timm-repvgg']);
    expect(s.stages.map((st) => st.name)).toEqual(['stem', 'stages.0', 'stages.1', 'stages.2']);
  });

  it('MobileOne: several k×k branches, scale branch, depthwise groups', async () => {
    const { structure: s } = await inspectFile(model('mobileone_train.pth'));
    expect(s.family).toBe('mobileone');
    const dw = byName(allBlocks(s), 'stage2.2');
    expect(roles(dw)).toEqual(['dense', 'dense', 'dense', 'oneByOne', 'identity']);
    expect(dw).toMatchObject({ groups: 32, inChannels: 32, kernel: 3 });
    expect(byName(allBlocks(s), 'stage2.1')).toMatchObject({ kernel: 1, inChannels: 16, outChannels: 32 });
  });

  it('mmpretrain RepVGG inside {meta, state_dict}', async () => {
    const { structure: s } = await inspectFile(model('mmpretrain_repvgg_train.pth'));
    expect(s.family).toBe('mmpretrain-repvgg');
    expect(s.stages[0].name).toBe('backbone.stem');
    expect(byName(allBlocks(s), 'backbone.stage_1.1')).toMatchObject({ groups: 4 });
  });

  it('a RepVGG backbone inside a bigger model: blocks found, the rest listed as other', async () => {
    const { structure: s } = await inspectFile(model('backbone_in_detector.pth'));
    expect(s.stages.map((st) => st.name)).toEqual(['backbone.stage0', 'backbone.stage1', 'backbone.stage2', 'backbone.stage3', 'backbone.stage4']);
    expect(s.other.every((n) => n.startsWith('neck.') || n.startsWith('head.'))).toBe(true);
  });
});
