import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeOnnxModel } from '../../../src/core/formats/onnxCodec';
import type { OnnxModel } from '../../../src/core/formats/onnxModel';
import { inspectFile } from '../../../src/core/inspect';
import { structureJson } from '../../../src/core/model/describe';
import { scopePath } from '../../../src/core/model/onnxStructure';
import { allBlocks, type ModelStructure } from '../../../src/core/model/structure';
import { fixture, GraphBuilder, syntheticModel, valueInfo } from './onnxTestKit';

const scratch = mkdtempSync(path.join(tmpdir(), 'replens-onnx-structure-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function inspectModel(model: OnnxModel, name: string): Promise<ModelStructure> {
  const file = path.join(scratch, name);
  writeFileSync(file, await encodeOnnxModel(model));
  return (await inspectFile(file)).structure;
}

type JsonBlock = { name: string; stride: number | null; strideSource: string; groupsSource: string; params: unknown; [field: string]: unknown };
const jsonBlocks = (s: ModelStructure) => (structureJson(s) as { stages: { name: string; blocks: JsonBlock[] }[] }).stages;

describe('ONNX structure matches the PyTorch twin', () => {
  const twins = [
    ['repvgg_tiny_train.onnx', 'repvgg_tiny_train.pth'],
    ['repvgg_tiny_train_folded.onnx', 'repvgg_tiny_train.pth'],
    ['repvgg_tiny_external.onnx', 'repvgg_tiny_train.pth'],
    ['yolov7_repconv_train.onnx', 'yolov7_repconv_train_sd.pth'],
  ] as const;

  it.each(twins)('%s ≙ %s: stages, names, channels, kernels, groups, branches; stride read from attributes', async (onnxName, pthName) => {
    const onnx = (await inspectFile(fixture(onnxName))).structure;
    const pth = (await inspectFile(fixture(pthName))).structure;
    expect([onnx.format, onnx.family, onnx.form, onnx.architecture]).toEqual(['onnx', pth.family, 'train', pth.architecture]);
    // Sources differ by design (the graph states what the checkpoint infers); params differ where the exporter folded BN.
    const strip = ({ stride: _s, strideSource: _ss, groupsSource: _gs, params: _p, ...rest }: JsonBlock) => rest;
    const o = jsonBlocks(onnx);
    const p = jsonBlocks(pth);
    expect(o.map((s) => ({ name: s.name, blocks: s.blocks.map(strip) }))).toEqual(p.map((s) => ({ name: s.name, blocks: s.blocks.map(strip) })));
    const oBlocks = o.flatMap((s) => s.blocks);
    const pBlocks = p.flatMap((s) => s.blocks);
    expect(oBlocks.every((b) => b.strideSource === 'attribute')).toBe(true);
    // Where the checkpoint can only infer the stride, the graph states it; where both know it, they agree.
    oBlocks.forEach((b, i) => {
      if (pBlocks[i].stride !== null) expect(b.stride).toBe(pBlocks[i].stride);
    });
    expect(allBlocks(onnx).map((b) => b.branches.map((x) => [x.role, x.module]))).toEqual(allBlocks(pth).map((b) => b.branches.map((x) => [x.role, x.module])));
    expect(onnx.warnings).toEqual([]);
    if (!onnxName.includes('folded')) expect(oBlocks.map((b) => b.params)).toEqual(pBlocks.map((b) => b.params));
  });

  it('the YOLOv7 stride-2 block the checkpoint cannot tell is stride 2 in the graph', async () => {
    const b = allBlocks((await inspectFile(fixture('yolov7_repconv_train.onnx'))).structure).find((x) => x.name === 'model.3')!;
    expect(b).toMatchObject({ stride: 2, strideSource: 'attribute', groups: 1, groupsSource: 'attribute', padding: 1, paddingSource: 'attribute' });
    expect(allBlocks((await inspectFile(fixture('yolov7_repconv_train.onnx'))).structure).find((x) => x.name === 'model.5')).toMatchObject({
      groups: 2,
      groupsSource: 'attribute',
    });
  });

  it('BN eps comes from the node attribute (float32 as stored), with the BN parameters as initializers', async () => {
    const [first] = allBlocks((await inspectFile(fixture('yolov7_repconv_train.onnx'))).structure);
    expect(first.branches.map((b) => b.bn)).toEqual([
      {
        weight: 'model.2.rbr_dense.1.weight',
        bias: 'model.2.rbr_dense.1.bias',
        mean: 'model.2.rbr_dense.1.running_mean',
        var: 'model.2.rbr_dense.1.running_var',
        eps: Math.fround(1e-3),
        epsSource: 'attribute',
      },
      expect.objectContaining({ weight: 'model.2.rbr_1x1.1.weight' }),
      expect.objectContaining({ weight: 'model.2.rbr_identity.weight', mean: 'model.2.rbr_identity.running_mean' }),
    ]);
  });

  it('folded export: names from the node scopes, convs with bias and no BN, identity BN kept', async () => {
    const s = (await inspectFile(fixture('repvgg_tiny_train_folded.onnx'))).structure;
    const b = allBlocks(s).find((x) => x.name === 'stage3.1')!;
    expect(b.onnx).toMatchObject({
      familySource: 'node-names',
      fusible: true,
      input: '/stage3/stage3.0/nonlinearity/Relu_output_0',
      output: '/stage3/stage3.1/Add_1_output_0',
    });
    expect(b.branches.map((x) => [x.role, x.withoutBn ?? false, x.convBias !== undefined, x.bn !== undefined])).toEqual([
      ['dense', true, true, false],
      ['oneByOne', true, true, false],
      ['identity', false, false, true],
    ]);
    expect(b.onnx!.nodeNames).toEqual([
      '/stage3/stage3.1/rbr_identity/BatchNormalization',
      '/stage3/stage3.1/rbr_dense/conv/Conv',
      '/stage3/stage3.1/Add',
      '/stage3/stage3.1/rbr_1x1/conv/Conv',
      '/stage3/stage3.1/Add_1',
    ]);
  });

  it('the train export names its blocks from initializer names and owns every branch tensor', async () => {
    const s = (await inspectFile(fixture('repvgg_tiny_train.onnx'))).structure;
    const b = allBlocks(s).find((x) => x.name === 'stage2.1')!;
    expect(b.onnx?.familySource).toBe('initializer-names');
    expect(b.tensors).toHaveLength(3 * 4 + 2);
    expect(s.other).toEqual(['linear.weight', 'linear.bias']);
  });

  it('deploy export: lone convs are deploy blocks because their names say rbr_reparam', async () => {
    const s = (await inspectFile(fixture('repvgg_tiny_deploy.onnx'))).structure;
    const pth = (await inspectFile(fixture('repvgg_tiny_deploy.pth'))).structure;
    expect([s.form, s.family]).toEqual(['deploy', 'repvgg']);
    expect(allBlocks(s).map((b) => [b.name, b.deploy?.weight])).toEqual(allBlocks(pth).map((b) => [b.name, b.deploy?.weight]));
    expect(s.params).toEqual(pth.params);
  });
});

describe('scopePath', () => {
  it('rebuilds module paths from torch node scopes', () => {
    expect(scopePath('/stage1/stage1.0/rbr_dense/conv/Conv')).toBe('stage1.0.rbr_dense.conv');
    expect(scopePath('/model/model.2/rbr_dense/rbr_dense.0/Conv')).toBe('model.2.rbr_dense.0');
    expect(scopePath('/features/features.0/features.0.1/Add')).toBe('features.0.1');
    expect(scopePath('/stage0/Add')).toBe('stage0');
    expect(scopePath('Conv_12')).toBe('');
    expect(scopePath(undefined)).toBe('');
  });
});

describe('blocks found by shape in any graph', () => {
  it('names them from scopes or by number, reads every branch kind, and finds nothing else', async () => {
    const s = await inspectModel(syntheticModel(3), 'synthetic.onnx');
    expect(s.family).toBe('unknown');
    expect(s.form).toBe('train');
    const blocks = allBlocks(s);
    expect(blocks.map((b) => b.name)).toEqual(['blocks.0', 'layer1.0', 'layer1.1', 'blocks.1']);
    expect(s.stages.map((st) => [st.name, st.blocks.length])).toEqual([
      ['blocks', 1],
      ['layer1', 2],
      ['blocks', 1],
    ]);
    const [a, b] = blocks;
    expect(a.branches.map((x) => [x.role, x.bn !== undefined, x.withoutBn ?? false])).toEqual([
      ['dense', true, false],
      ['oneByOne', false, true],
      ['identity', false, true],
      ['identity', true, false],
    ]);
    expect(a.branches[2].module).toBe('x');
    expect(a.onnx).toMatchObject({ input: 'x', familySource: 'none', fusible: true });
    expect(a.onnx!.nodes).toHaveLength(3 + 2 + 2);
    expect(b).toMatchObject({ groups: 2, inChannels: 4, stride: 1, strideSource: 'attribute' });
    expect(b.branches.map((x) => x.module)).toEqual(['/layer1/layer1.0/conv_a/Conv', '/layer1/layer1.0/conv_b/Conv']);
  });

  it('warns about branches one conv cannot express and does not mark them fusible', async () => {
    const blocks = allBlocks(await inspectModel(syntheticModel(4), 'synthetic.onnx'));
    const byName = (n: string) => blocks.find((b) => b.name === n)!;
    expect(byName('layer1.1').onnx?.fusible).toBe(false);
    expect(byName('layer1.1').warnings).toEqual([
      '/layer1/layer1.1/conv_a/Conv: dilations [2, 2]; only dilation 1 fuses exactly',
      '/layer1/layer1.1/conv_a/Conv: pads [2, 2, 2, 2] do not centre its 3×3 kernel (1 on every side is needed)',
    ]);
    expect(byName('blocks.1').onnx?.fusible).toBe(false);
    expect(byName('blocks.1').warnings).toEqual([expect.stringMatching(/^Conv node #\d+: pads \[0, 0, 2, 2\] do not centre its 3×3 kernel/)]);
    expect(byName('layer1.0').onnx?.fusible).toBe(true);
  });

  it('a plain conv network is form none: without names a lone conv is no block', async () => {
    const g = new GraphBuilder(5);
    const y = g.node('Relu', [
      g.conv(g.node('Relu', [g.conv('x', { out: 4, in: 3, k: 3, bias: true, name: '/features/features.0/Conv' })]), {
        out: 4,
        in: 4,
        k: 3,
        bias: true,
        weight: 'features.2.weight',
      }),
    ]);
    const s = await inspectModel(g.model(valueInfo('x', [1, 3, 8, 8]), y, [1, 4, 8, 8]), 'plain.onnx');
    expect([s.form, s.family, s.stages]).toEqual(['none', 'unknown', []]);
    expect(s.other).toHaveLength(4);
  });

  it('a sum that is also a graph output ends the block there', async () => {
    const g = new GraphBuilder(6);
    const inner = g.node('Add', [g.conv('x', { out: 4, in: 4, k: 3 }), g.conv('x', { out: 4, in: 4, k: 1 })]);
    const y = g.node('Add', [inner, 'x']);
    const model = g.model(valueInfo('x', [1, 4, 8, 8]), y, [1, 4, 8, 8]);
    // The inner sum is also a graph output, so it must survive: the outer Add is no longer part of the block.
    model.graph!.output.push(valueInfo(inner, [1, 4, 8, 8]));
    const [block, ...rest] = allBlocks(await inspectModel(model, 'pinned.onnx'));
    expect(rest).toEqual([]);
    expect(block.onnx?.output).toBe(inner);
    expect(block.branches.map((b) => b.role)).toEqual(['dense', 'oneByOne']);
  });
});
