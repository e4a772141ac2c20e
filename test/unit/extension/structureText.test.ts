import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectFile } from '../../../src/core/inspect';
import { buildStructureFromTensors } from '../../../src/core/model/buildStructure';
import { INFERRED_LEGEND, structureText } from '../../../src/core/model/describe';
import { allBlocks, type Block, type ModelStructure } from '../../../src/core/model/structure';
import { absenceReason, blockRow, branchRow, md, modelRow, stageRow } from '../../../src/extension/structureText';
import { qarepvggBlock, Synth } from '../model/synthetic';

/** The committed fixtures, which make_fixtures.py builds with real torch modules. */
const model = (name: string) => path.join(__dirname, '..', '..', 'fixtures', 'models', name);
const structureOf = async (name: string) => (await inspectFile(model(name))).structure;
const byName = (s: ModelStructure, name: string): Block => {
  const block = allBlocks(s).find((b) => b.name === name);
  expect(block, `block ${name}`).toBeDefined();
  return block!;
};

/** Files whose blocks cover the kinds of description: inferred and stored strides, groups, SE, MobileOne, ONNX with BN folded, deploy. */
const FIXTURES = [
  'repvgg_tiny_train.pth',
  'repvgg_full_module.pt',
  'repvgg_grouped_train.pth',
  'repvgg_se_train.pth',
  'mobileone_train.pth',
  'repvgg_tiny_train_folded.onnx',
  'yolov7_repconv_train.pt',
  'repvgg_tiny_deploy.pth',
];

describe('block rows: the branches first', () => {
  it('a RepVGG block reads marks, then channels and stride', async () => {
    const s = await structureOf('repvgg_tiny_train.pth');
    expect(blockRow(byName(s, 'stage2.0')).description).toBe('3×3 ✓ 1×1 ✓ id – · 8→16 s2?');
    expect(blockRow(byName(s, 'stage2.1')).description).toBe('3×3 ✓ 1×1 ✓ id ✓ · 16→16 s1?');
  });

  it('every block of the fixtures starts with its branch marks (or "fused"), short enough for a 300 px side bar', async () => {
    for (const file of FIXTURES) {
      for (const block of allBlocks(await structureOf(file))) {
        const description = blockRow(block).description;
        const first = description.split(' · ')[0];
        if (block.form === 'deploy') expect(first, `${file} ${block.name}`).toMatch(/^fused \d+×\d+$/);
        else expect(first, `${file} ${block.name}`).toMatch(/^\d+×\d+ (✓|–)\S* 1×1 (✓|–)\S* id (✓|–)\S*( avg (✓|–)\S*)?$/);
        // About 28 characters of description fit beside a block's name at the default width: the marks come before that.
        expect(first.length, `${file} ${block.name}: ${description}`).toBeLessThanOrEqual(24);
      }
    }
  });

  it('QARepVGG: the marks first, the branches without BN and the BN after the sum at the end', () => {
    const s = new Synth(7);
    qarepvggBlock(s, { name: 'blocks.0', cin: 16, cout: 16, stride: 1 }, 'v1');
    const block = byName(buildStructureFromTensors('torch-zip', s.tensors), 'blocks.0');
    expect(blockRow(block).description).toBe('3×3 ✓ 1×1 ✓ id ✓? avg – · 16→16 s1? · 1×1, id without BN · BN after sum');
  });

  it('the block tooltip names each branch, and why one is absent', async () => {
    const s = await structureOf('repvgg_tiny_train.pth');
    const tooltip = blockRow(byName(s, 'stage2.0')).tooltip;
    expect(tooltip).toContain('identity (BN) – (in 8 ≠ out 16)');
    expect(tooltip).toContain("stride 2 (inferred: stride 2 at each stage's first block (the family's convention))");
  });
});

describe('branch rows', () => {
  it('an absent identity gives the reason from the block: in ≠ out', async () => {
    const s = await structureOf('repvgg_tiny_train.pth');
    const row = branchRow(byName(s, 'stage2.0'), 'identity', 0);
    expect(row).toMatchObject({ label: 'identity (BN)', description: 'absent: in 8 ≠ out 16', state: 'absent' });
    expect(row.tooltip.split('\n\n')[0]).toBe('**identity (BN)**: absent — in 8 ≠ out 16');
    expect(row.tooltip).toContain('only where in == out and stride 1');
  });

  it('an absent identity where in == out: the stride, marked inferred as the block is', async () => {
    const s = await structureOf('repvgg_tiny_train.pth');
    const block = byName(s, 'stage1.0');
    expect([block.inChannels, block.outChannels, block.stride, block.strideSource]).toEqual([8, 8, 2, 'stage-convention']);
    const row = branchRow(block, 'identity', 0);
    expect(row.description).toBe('absent: stride 2?');
    expect(row.tooltip).toContain('absent — stride 2?');
    expect(row.tooltip).toContain("this block: 8→8, stride 2 (inferred: stride 2 at each stage's first block (the family's convention))");
    // A stride the file stores is a fact: no '?'.
    expect(absenceReason(byName(await structureOf('repvgg_full_module.pt'), 'stage1.0'), 'identity')).toEqual({ text: 'stride 2' });
  });

  it("the structure's own reason stays in the tooltip when the block's shape says it more exactly", async () => {
    const s = new Synth(8);
    qarepvggBlock(s, { name: 'blocks.0', cin: 8, cout: 16, stride: 2 }, 'v1');
    qarepvggBlock(s, { name: 'blocks.1', cin: 16, cout: 16, stride: 1 }, 'v1');
    const st = buildStructureFromTensors('torch-zip', s.tensors);
    const avg0 = branchRow(byName(st, 'blocks.0'), 'avgPool', 0);
    expect(avg0.description).toBe('absent: in 8 ≠ out 16');
    expect(avg0.tooltip).toContain('as read: assumed QARepVGGBlock');
    // Where the shape would allow it, the structure's reason is the one shown.
    expect(branchRow(byName(st, 'blocks.1'), 'avgPool', 0).description).toMatch(/^absent: assumed QARepVGGBlock, which has none/);
  });

  it('a present branch: what it is, its BN, how it is known, the rule', async () => {
    const s = await structureOf('repvgg_tiny_train.pth');
    const block = byName(s, 'stage2.1');
    const dense = branchRow(block, 'dense', 0);
    expect(dense).toMatchObject({ label: '3×3 conv + BN', description: '[16, 16, 3, 3]', state: 'present' });
    expect(dense.tooltip).toContain('**3×3 conv + BN**: present');
    expect(dense.tooltip).toContain('`stage2.1.rbr_dense.conv` [16, 16, 3, 3]');
    expect(dense.tooltip).toContain('BN `stage2.1.rbr_dense.bn`');
    expect(dense.tooltip).toMatch(/eps [0-9.e-]+ \(family default\)/);
    expect(dense.tooltip).toContain('present: its tensors are in the file');
    expect(dense.tooltip).toContain('Fusion folds the BN into the conv');
    const identity = branchRow(block, 'identity', 0);
    expect(identity).toMatchObject({ label: 'identity (BN)', state: 'present' });
    expect(identity.tooltip).toContain('through a BN');
  });

  it('an inferred branch says it is inferred and why', () => {
    const s = new Synth(9);
    qarepvggBlock(s, { name: 'blocks.0', cin: 16, cout: 16, stride: 1 }, 'v1');
    const row = branchRow(byName(buildStructureFromTensors('torch-zip', s.tensors), 'blocks.0'), 'identity', 0);
    expect(row).toMatchObject({ label: 'identity (no BN, inferred)', state: 'inferred' });
    expect(row.tooltip).toContain('**identity (no BN, inferred)**: inferred');
    expect(row.tooltip).toContain('inferred: a state dict cannot show a branch without tensors');
    expect(row.tooltip).toContain('unchanged (no BN)');
  });

  it('a deploy block has one fused row', async () => {
    const s = await structureOf('repvgg_tiny_deploy.pth');
    const row = branchRow(byName(s, 'stage2.0'), 'deploy', 0);
    expect(row).toMatchObject({ label: 'fused 3×3 conv + bias', description: '[16, 8, 3, 3]', state: 'fused' });
  });
});

describe('model and stage rows', () => {
  it('the model row starts with the form; a stage row with its size, warnings first', async () => {
    const s = await structureOf('repvgg_tiny_train.pth');
    expect(modelRow(s, 'repvgg_tiny_train.pth').description).toBe('train · custom · repvgg');
    const stage = s.stages.find((st) => st.name === 'stage2')!;
    expect(stageRow(stage).description).toBe('2 blocks · 8→16');
    const warned = { ...stage, blocks: [{ ...stage.blocks[0], warnings: ['something'] }, stage.blocks[1]] };
    expect(stageRow(warned).description).toBe('1 block with warnings · 2 blocks · 8→16');
  });

  it('Markdown punctuation in names is taken literally', () => {
    expect(md('in_channels ≠ out_channels (stride 2*) <b>')).toBe('in\\_channels ≠ out\\_channels (stride 2\\*) \\<b\\>');
  });
});

describe('replens inspect explains ?', () => {
  it('a legend after the tree when a value is inferred, with where each inferred stride came from', async () => {
    const text = structureText(await structureOf('repvgg_tiny_train.pth'), 'repvgg_tiny_train.pth');
    const lines = text.split('\n');
    const legend = lines.indexOf(INFERRED_LEGEND);
    expect(legend).toBeGreaterThan(lines.findIndex((l) => l.includes('stage4.0')));
    expect(lines.slice(legend + 1)).toEqual([
      "  note: s2? (stage0, stage1.0, stage2.0, … (5 blocks)): inferred: stride 2 at each stage's first block (the family's convention)",
      '  note: s1? (stage2.1, stage3.1): inferred: an identity branch means stride 1',
    ]);
  });

  it('no legend when nothing is inferred (a pickled module stores every stride)', async () => {
    const text = structureText(await structureOf('repvgg_full_module.pt'), 'repvgg_full_module.pt');
    expect(text).not.toContain('?');
    expect(text).not.toContain(INFERRED_LEGEND);
  });

  it('a stride the stage convention sets to 1 says so, and an unknown stride is "s?"', async () => {
    const mobileone = structureText(await structureOf('mobileone_train.pth'), 'mobileone_train.pth');
    expect(mobileone).toContain("  note: s1? (stage2.1, stage3.1): inferred: stride 1 after each stage's first block (the family's convention)");
    const deploy = structureText(await structureOf('repvgg_tiny_deploy.pth'), 'repvgg_tiny_deploy.pth');
    expect(deploy).toContain(INFERRED_LEGEND);
    expect(deploy).toContain('  note: s? (stage2.1, stage3.1): unknown: the file does not store it');
  });
});
