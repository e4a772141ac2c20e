import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeOnnxModel, encodeOnnxModel } from '../../../src/core/formats/onnxCodec';
import type { ModelFile } from '../../../src/core/formats/modelFile';
import type { OnnxGraph, OnnxNode } from '../../../src/core/formats/onnxModel';
import { openModelFile } from '../../../src/core/formats/openModelFile';
import { FusionError } from '../../../src/core/fuse/fuseBlock';
import { buildGraph, GraphError } from '../../../src/core/graph/buildGraph';
import { graphStats } from '../../../src/core/graph/stats';
import { buildStructure } from '../../../src/core/model/buildStructure';
import { allBlocks } from '../../../src/core/model/structure';

const MODELS = path.join(__dirname, '..', '..', 'fixtures', 'models');
const open: ModelFile[] = [];

async function fixture(name: string) {
  const model = await openModelFile(path.join(MODELS, name));
  open.push(model);
  return { model, structure: buildStructure(model) };
}

afterEach(async () => {
  for (const m of open.splice(0)) await m.close();
});

const ops = (g: OnnxGraph, prefix: string) => g.node.filter((n) => n.name!.startsWith(`${prefix}/`) || n.name === prefix).map((n) => n.opType);
const attr = (n: OnnxNode, name: string) => n.attribute.find((a) => a.name === name)!;
const node = (g: OnnxGraph, name: string) => g.node.find((n) => n.name === name)!;

describe('topology', () => {
  it.each([
    ['repvgg_tiny_train.pth', 'classifier', 7],
    ['repvgg_grouped_train.pth', 'classifier', 8],
    ['repvgg_se_train.pth', 'classifier', 6],
    ['timm_repvgg_train.safetensors', 'classifier', 5],
    ['mobileone_train.pth', 'classifier', 11],
    ['mmpretrain_repvgg_train.pth', 'classifier', 6],
    ['repvgg_tiny_wrapped.pth.tar', 'classifier', 7],
    ['backbone_in_detector.pth', 'chain', 5],
    ['yolov7_repconv_train_sd.pth', 'blockwise', 3],
  ])('%s → %s with %i block outputs', async (file, topology, blocks) => {
    const { model, structure } = await fixture(file);
    const g = await buildGraph(model, structure, { form: 'as-is' });
    expect(g.topology).toBe(topology);
    expect(g.blocks).toHaveLength(blocks);
    const outputs = g.model.graph!.output.map((o) => o.name);
    // Every block is a graph output, so the blocks can be compared one by one.
    for (const b of g.blocks) expect(outputs).toContain(b);
    if (topology === 'classifier') expect(g.outputs).toEqual(['output']);
    if (topology === 'chain') expect(g.outputs).toEqual([g.blocks.at(-1)]);
    if (topology === 'blockwise') expect(g.inputs.map((i) => i.name)).toEqual(g.blocks.map((b) => `${b}:input`));
    else expect(g.inputs).toEqual([{ name: 'input', channels: 3 }]);
  });

  it('says why a model is run block by block: a layer sits between two blocks', async () => {
    const { model, structure } = await fixture('yolov7_repconv_train_sd.pth');
    const g = await buildGraph(model, structure, { form: 'as-is' });
    expect(g.notes[0]).toContain('model.5 takes 32 channels, model.3 gives 48');
    expect(g.notes.some((n) => n.startsWith('model.3: stride unknown'))).toBe(true);
  });

  it('leaves a detector neck out of a chained backbone and says so', async () => {
    const { model, structure } = await fixture('backbone_in_detector.pth');
    const g = await buildGraph(model, structure, { form: 'as-is' });
    expect(g.notes[0]).toMatch(/tensors outside the blocks \(neck\.lateral3\.conv\.weight/);
  });

  it('drops a DataParallel module. prefix from block names, like the deploy writer', async () => {
    const { model, structure } = await fixture('repvgg_tiny_wrapped.pth.tar');
    const g = await buildGraph(model, structure, { form: 'deploy' });
    expect(g.blocks[0]).toBe('stage0');
  });
});

describe('train form', () => {
  it('has a Conv+BN per conv branch, a BN for the identity, the sum, then ReLU', async () => {
    const { model, structure } = await fixture('repvgg_tiny_train.pth');
    const g = (await buildGraph(model, structure, { form: 'as-is' })).model.graph!;
    expect(ops(g, 'stage2.1')).toEqual(['Conv', 'BatchNormalization', 'Conv', 'BatchNormalization', 'BatchNormalization', 'Add', 'Add', 'Relu']);
    // The identity BN reads the block input, the previous block's output.
    expect(node(g, 'stage2.1/rbr_identity/bn').input[0]).toBe('stage2.0');
    const conv1x1 = node(g, 'stage2.0/rbr_1x1.conv/conv');
    expect(attr(conv1x1, 'pads').ints).toEqual([0n, 0n, 0n, 0n]);
    expect(attr(node(g, 'stage2.0/rbr_dense.conv/conv'), 'pads').ints).toEqual([1n, 1n, 1n, 1n]);
    expect(attr(node(g, 'stage2.0/rbr_dense.conv/conv'), 'strides').ints).toEqual([2n, 2n]);
    const bn = node(g, 'stage2.1/rbr_dense.conv/bn');
    expect(attr(bn, 'epsilon').f).toBeCloseTo(1e-5, 12);
    expect(bn.input.slice(1)).toEqual(['weight', 'bias', 'running_mean', 'running_var'].map((p) => `stage2.1.rbr_dense.bn.${p}`));
    expect(ops(g, 'head')).toEqual(['GlobalAveragePool', 'Flatten']);
    expect(node(g, 'output').opType).toBe('Gemm');
  });

  it('applies SE to the branch sum before the activation', async () => {
    const { model, structure } = await fixture('repvgg_se_train.pth');
    const g = (await buildGraph(model, structure, { form: 'as-is' })).model.graph!;
    expect(ops(g, 'stage0').slice(-8)).toEqual(['Add', 'GlobalAveragePool', 'Conv', 'Relu', 'Conv', 'Sigmoid', 'Mul', 'Relu']);
    expect(node(g, 'stage0/se/scale').input).toEqual(['stage0/sum', 'stage0/se/gate']);
  });

  it('uses SiLU as x·sigmoid(x) and the stored BN eps 1e-3 for YOLOv7, with groups on every conv branch', async () => {
    const { model, structure } = await fixture('yolov7_repconv_train.pt');
    const g = (await buildGraph(model, structure, { form: 'as-is' })).model.graph!;
    expect(ops(g, 'model.5').slice(-2)).toEqual(['Sigmoid', 'Mul']);
    expect(node(g, 'model.5').input).toEqual(['model.5/sum', 'model.5/act/sigmoid']);
    expect(attr(node(g, 'model.5/rbr_dense.0/conv'), 'group').i).toBe(2n);
    expect(attr(node(g, 'model.5/rbr_1x1.0/conv'), 'group').i).toBe(2n);
    expect(attr(node(g, 'model.5/rbr_identity/bn'), 'epsilon').f).toBeCloseTo(1e-3, 9);
    // The pickled module says model.3 has stride 2; no guess is needed.
    expect(attr(node(g, 'model.3/rbr_dense.0/conv'), 'strides').ints).toEqual([2n, 2n]);
  });

  it('takes an eps override for every BatchNormalization', async () => {
    const { model, structure } = await fixture('repvgg_tiny_train.pth');
    const g = (await buildGraph(model, structure, { form: 'as-is', eps: 0.01 })).model.graph!;
    const eps = g.node.filter((n) => n.opType === 'BatchNormalization').map((n) => attr(n, 'epsilon').f!);
    expect(eps.length).toBeGreaterThan(0);
    for (const e of eps) expect(e).toBeCloseTo(0.01, 9);
  });

  it('stores float16 checkpoints as float32 initializers', async () => {
    const { model, structure } = await fixture('repvgg_tiny_fp16.pt');
    const g = (await buildGraph(model, structure, { form: 'as-is' })).model.graph!;
    expect(new Set(g.initializer.map((t) => t.dataType))).toEqual(new Set([1]));
    const w = g.initializer.find((t) => t.name === 'stage0.rbr_dense.conv.weight')!;
    const fp16 = model.tensors.find((t) => t.name === 'stage0.rbr_dense.conv.weight')!;
    const raw = w.rawData as Uint8Array;
    expect(Array.from(new Float32Array(raw.slice().buffer))).toEqual(Array.from(await fp16.toFloat64()));
  });
});

describe('deploy form', () => {
  it('is one Conv with the fused weight and bias per block, plus SE and activation', async () => {
    const { model, structure } = await fixture('repvgg_se_train.pth');
    const g = (await buildGraph(model, structure, { form: 'deploy' })).model.graph!;
    expect(ops(g, 'stage2.1')).toEqual(['Conv', 'GlobalAveragePool', 'Conv', 'Relu', 'Conv', 'Sigmoid', 'Mul', 'Relu']);
    expect(g.node.some((n) => n.opType === 'BatchNormalization')).toBe(false);
    expect(node(g, 'stage2.1/reparam').input.slice(1)).toEqual(['stage2.1.rbr_reparam.weight', 'stage2.1.rbr_reparam.bias']);
  });

  it('equals the deploy state dict PyTorch fused, within float32 rounding', async () => {
    const { model, structure } = await fixture('repvgg_tiny_train.pth');
    const g = (await buildGraph(model, structure, { form: 'deploy' })).model.graph!;
    const torch = await fixture('repvgg_tiny_deploy.pth');
    for (const t of torch.model.tensors.filter((x) => x.name.includes('rbr_reparam'))) {
      const mine = g.initializer.find((i) => i.name === t.name)!;
      const values = new Float32Array((mine.rawData as Uint8Array).slice().buffer);
      const want = await t.toFloat32();
      expect(mine.dims).toEqual(t.shape);
      const worst = Math.max(...want.map((w, i) => Math.abs(values[i] - w) / Math.max(1, Math.abs(w))));
      expect(worst).toBeLessThan(1e-5);
    }
  });

  it('builds a deploy file as stored, with the same inputs and outputs as the train form', async () => {
    const train = await fixture('repvgg_tiny_train.pth');
    const deploy = await fixture('repvgg_tiny_deploy.pth');
    const a = await buildGraph(train.model, train.structure, { form: 'as-is' });
    const b = await buildGraph(deploy.model, deploy.structure, { form: 'as-is' });
    expect(b.topology).toBe(a.topology);
    expect(b.model.graph!.output.map((o) => o.name)).toEqual(a.model.graph!.output.map((o) => o.name));
    expect(b.form).toBe('deploy');
    expect(a.form).toBe('train');
  });

  it('refuses a block that cannot be fused, naming it', async () => {
    const { model, structure } = await fixture('repvgg_tiny_train.pth');
    const broken = structuredClone(structure);
    allBlocks(broken)[2].padding = 0;
    await expect(buildGraph(model, broken, { form: 'deploy' })).rejects.toThrow(FusionError);
    await expect(buildGraph(model, broken, { form: 'deploy' })).rejects.toThrow(/^stage2\.0: padding 0/);
    // The train form cannot place the 1×1 branch either: it would need padding -1.
    await expect(buildGraph(model, broken, { form: 'as-is' })).rejects.toThrow(GraphError);
  });
});

describe('encoding and statistics', () => {
  it('encodes to an opset 13 model that decodes back to the same graph', async () => {
    const { model, structure } = await fixture('mobileone_train.pth');
    const built = await buildGraph(model, structure, { form: 'as-is' });
    const bytes = await encodeOnnxModel(built.model);
    const back = decodeOnnxModel(bytes);
    expect(back.irVersion).toBeGreaterThanOrEqual(7);
    expect(back.opsetImport).toEqual([{ domain: '', version: 13 }]);
    expect(back.graph!.node.map((n) => n.opType)).toEqual(built.model.graph!.node.map((n) => n.opType));
    expect(back.graph!.input[0].type!.tensorType!.shape!.dim).toEqual([{ dimParam: 'batch' }, { dimValue: 3 }, { dimParam: 'height' }, { dimParam: 'width' }]);
    expect(back.metadataProps).toContainEqual({ key: 'replens.topology', value: 'classifier' });
  });

  it('counts parameters like the structure does and MACs per conv', async () => {
    const { model, structure } = await fixture('repvgg_tiny_train.pth');
    const shapes = new Map([['input', [1, 3, 32, 32]]]);
    const train = graphStats((await buildGraph(model, structure, { form: 'as-is' })).model.graph!, shapes);
    const deploy = graphStats((await buildGraph(model, structure, { form: 'deploy' })).model.graph!, shapes);
    // BN running statistics are buffers, not parameters, on both sides.
    expect(train.params).toBe(structure.params.total);
    expect(deploy.params).toBe(structure.params.afterFusion);
    // out_elems·(in/groups)·3·3 per block at 32×32 input, strides 2,2,2,1,2,1,2; then the 32→10 Gemm.
    const convs = [16 * 16 * 8 * 3, 8 * 8 * 8 * 8, 4 * 4 * 16 * 8, 4 * 4 * 16 * 16, 2 * 2 * 32 * 16, 2 * 2 * 32 * 32, 1 * 1 * 32 * 32].map((n) => n * 9);
    expect(deploy.macs).toBe(convs.reduce((a, b) => a + b) + 32 * 10);
    expect(deploy.nodes).toBe(7 * 2 + 3);
    expect(train.macs).toBeGreaterThan(deploy.macs!);
  });

  it('reports MACs as unknown when a shape cannot be followed', () => {
    const graph: OnnxGraph = {
      node: [
        { name: 'r', opType: 'Reshape', input: ['x', 's'], output: ['y'], attribute: [] },
        { name: 'g', opType: 'Gemm', input: ['y', 'w'], output: ['z'], attribute: [] },
      ],
      initializer: [
        { name: 'w', dims: [4, 2], dataType: 1, floatData: [], int32Data: [], stringData: [], int64Data: [], doubleData: [], uint64Data: [], externalData: [] },
      ],
      input: [],
      output: [],
      valueInfo: [],
    };
    const stats = graphStats(graph, new Map([['x', [2, 2, 2]]]));
    expect(stats).toEqual({ params: 8, macs: null, nodes: 2, macsNote: "MACs unknown: no shape for the input of Gemm 'g'" });
  });
});
