import { describe, expect, it } from 'vitest';
import { planDeploy, postBnInDeploy } from '../../../src/core/convert/deployPlan';
import { fuseBlock } from '../../../src/core/fuse/fuseBlock';
import { buildStructure } from '../../../src/core/model/buildStructure';
import { allBlocks } from '../../../src/core/model/structure';
import type { OutputTensor } from '../../../src/core/writers/outputTensor';
import { memoryModel, qarepvggBlock, Synth, timmMobileOneBlock, type BlockSpec } from '../model/synthetic';
import { producedBytes } from '../writers/producedBytes';

const STACK: BlockSpec[] = [
  { name: 'blocks.0', cin: 8, cout: 16, stride: 2 },
  { name: 'blocks.1', cin: 16, cout: 16, stride: 1 },
];

async function float32(t: OutputTensor): Promise<Float32Array> {
  return new Float32Array((await producedBytes(t)).buffer);
}

describe('deploy checkpoint of YOLOv6 QARepVGG: what switch_to_deploy leaves (rbr_reparam + bn)', () => {
  const s = new Synth(31);
  for (const b of STACK) qarepvggBlock(s, b, 'v2');
  s.vector('head.scale', 4, 0, 1);

  it('has rbr_reparam.weight and .bias, keeps bn.* (num_batches_tracked too), and nothing else of the branches', () => {
    const model = memoryModel(s.tensors);
    const structure = buildStructure(model, { qarepvgg: 'v2' });
    const plan = planDeploy(model, structure);
    expect(plan.fused.map((b) => b.name)).toEqual(['blocks.0', 'blocks.1']);
    expect(plan.tensors.map((t) => [t.name, t.dtype, [...t.shape]])).toEqual([
      ['blocks.0.rbr_reparam.weight', 'float32', [16, 8, 3, 3]],
      ['blocks.0.rbr_reparam.bias', 'float32', [16]],
      ['blocks.0.bn.weight', 'float32', [16]],
      ['blocks.0.bn.bias', 'float32', [16]],
      ['blocks.0.bn.running_mean', 'float32', [16]],
      ['blocks.0.bn.running_var', 'float32', [16]],
      ['blocks.0.bn.num_batches_tracked', 'int64', []],
      ['blocks.1.rbr_reparam.weight', 'float32', [16, 16, 3, 3]],
      ['blocks.1.rbr_reparam.bias', 'float32', [16]],
      ['blocks.1.bn.weight', 'float32', [16]],
      ['blocks.1.bn.bias', 'float32', [16]],
      ['blocks.1.bn.running_mean', 'float32', [16]],
      ['blocks.1.bn.running_var', 'float32', [16]],
      ['blocks.1.bn.num_batches_tracked', 'int64', []],
      ['head.scale', 'float32', [4]],
    ]);
    expect(plan.tensors.some((t) => /rbr_1x1|rbr_dense|rbr_identity|rbr_avg/.test(t.name))).toBe(false);
    expect(allBlocks(structure).map(postBnInDeploy)).toEqual(['keep', 'keep']);
  });

  it('rbr_reparam is the sum before the BN, the BN bytes are the input’s own, and the file reads back as deploy blocks that keep it', async () => {
    const model = memoryModel(s.tensors);
    const structure = buildStructure(model, { qarepvgg: 'v2' });
    const plan = planDeploy(model, structure);
    const byName = new Map(plan.tensors.map((t) => [t.name, t]));
    // The file holds float32: the reference fuses those values.
    const values = new Map(s.tensors.map((t) => [t.name, Float32Array.from(t.values)]));
    for (const block of allBlocks(structure)) {
      const pre = await fuseBlock(block, async (n) => values.get(n)!, { postBn: 'keep' });
      expect(Array.from(await float32(byName.get(`${block.name}.rbr_reparam.weight`)!))).toEqual(Array.from(Float32Array.from(pre.weight)));
      expect(Array.from(await float32(byName.get(`${block.name}.rbr_reparam.bias`)!))).toEqual(Array.from(Float32Array.from(pre.bias)));
      const folded = await fuseBlock(block, async (n) => values.get(n)!, { postBn: 'fold' });
      expect(Array.from(Float32Array.from(folded.weight))).not.toEqual(Array.from(Float32Array.from(pre.weight)));
      for (const p of ['weight', 'bias', 'running_mean', 'running_var']) {
        expect(Array.from(await float32(byName.get(`${block.name}.bn.${p}`)!))).toEqual(Array.from(Float32Array.from(values.get(`${block.name}.bn.${p}`)!)));
      }
    }
    // The deploy file, read as RepLens reads files: deploy-form QARepVGG blocks with their post BN.
    const written = plan.tensors.map((t) => ({ name: t.name, shape: [...t.shape], dtype: t.dtype, values: new Float64Array(0) }));
    const again = buildStructure(memoryModel(written));
    expect(again.family).toBe('yolov6-qarepvgg');
    expect(allBlocks(again).map((b) => [b.form, b.postBn?.weight])).toEqual([
      ['deploy', 'blocks.0.bn.weight'],
      ['deploy', 'blocks.1.bn.weight'],
    ]);
    expect(again.other).toEqual(['head.scale']);
  });
});

describe('deploy checkpoint of timm MobileOne: reparam_conv, with the SE (attn) kept', () => {
  it('has each block’s reparam_conv and attn.*, and none of conv_kxk, conv_scale or identity', () => {
    const s = new Synth(32);
    timmMobileOneBlock(s, { name: 'stages.0.0', cin: 8, cout: 8, stride: 1, groups: 8, kernel: 3, branches: 3, se: 2 });
    timmMobileOneBlock(s, { name: 'stages.0.1', cin: 8, cout: 16, stride: 1, kernel: 1, branches: 2 });
    const model = memoryModel(s.tensors);
    const plan = planDeploy(model, buildStructure(model));
    expect(plan.tensors.map((t) => [t.name, [...t.shape]])).toEqual([
      ['stages.0.0.reparam_conv.weight', [8, 1, 3, 3]],
      ['stages.0.0.reparam_conv.bias', [8]],
      ['stages.0.0.attn.fc1.weight', [2, 8, 1, 1]],
      ['stages.0.0.attn.fc1.bias', [2]],
      ['stages.0.0.attn.fc2.weight', [8, 2, 1, 1]],
      ['stages.0.0.attn.fc2.bias', [8]],
      ['stages.0.1.reparam_conv.weight', [16, 8, 1, 1]],
      ['stages.0.1.reparam_conv.bias', [16]],
    ]);
  });
});
