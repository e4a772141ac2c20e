import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { planDeploy } from '../../../src/core/convert/deployPlan';
import type { OnnxGraph, OnnxNode } from '../../../src/core/formats/onnxModel';
import { openModelFile } from '../../../src/core/formats/openModelFile';
import { buildGraph } from '../../../src/core/graph/buildGraph';
import { buildStructure } from '../../../src/core/model/buildStructure';
import { allBlocks, type ModelStructure } from '../../../src/core/model/structure';
import { fuseBlock } from '../../../src/core/fuse/fuseBlock';
import { checkParity, compareModels, type ParityOptions, type ParityResult } from '../../../src/core/parity/parity';
import { writeAtomically } from '../../../src/core/writers/atomicFile';
import type { OutputTensor } from '../../../src/core/writers/outputTensor';
import { writeTorchCheckpoint } from '../../../src/core/writers/torchWriter';
import {
  memoryModel,
  qarepvggBlock,
  Synth,
  timmMobileOneBlock,
  tree,
  writeModuleCheckpoint,
  writeStateDict,
  yolov6RepvggBlock,
  TINY_MOBILEONE,
  type BlockSpec,
  type PyModule,
  type SynthTensor,
} from '../model/synthetic';
import { parityWorkerUnderTest } from '../parity/bundle';
import { producedBytes } from '../writers/producedBytes';

const env = parityWorkerUnderTest('replens-new-families-graph-');
let base: ParityOptions;

beforeAll(async () => {
  base = { workerPath: env.workerPath, inputs: 2, latencyRuns: 0 };
});

const STACK: BlockSpec[] = [
  { name: 'blocks.0', cin: 8, cout: 16, stride: 2 },
  { name: 'blocks.1', cin: 16, cout: 16, stride: 1 },
  { name: 'blocks.2', cin: 16, cout: 16, stride: 1 },
  { name: 'blocks.3', cin: 16, cout: 24, stride: 2 },
  { name: 'blocks.4', cin: 24, cout: 24, stride: 1 },
];

function qarep(version: 'v1' | 'v2', seed = 51): { s: Synth; root: PyModule } {
  const s = new Synth(seed);
  const modules = STACK.map((b) => [b.name, qarepvggBlock(s, b, version)] as [string, PyModule]);
  return { s, root: tree('__main__.Stack', modules) };
}

const byName = (g: OnnxGraph, name: string) => g.node.find((n) => n.name === name)!;
const opsOf = (g: OnnxGraph, block: string) => g.node.filter((n) => n.name!.startsWith(`${block}/`) || n.name === block).map((n) => n.opType);
const ints = (n: OnnxNode, a: string) => {
  const at = n.attribute.find((x) => x.name === a)!;
  return at.ints.length ? at.ints.map(Number) : Number(at.i);
};

/** Every block passes, by numbers: relative error near float32 rounding, cosine 1. */
function expectPasses(r: ParityResult, blocks: string[]) {
  expect(r.blocks.map((b) => b.name)).toEqual(blocks);
  for (const b of r.blocks) {
    expect(b.pass, b.name).toBe(true);
    expect(b.maxRel, b.name).toBeLessThan(1e-4);
    expect(b.cosine, b.name).toBeGreaterThan(0.999999);
  }
  for (const o of r.outputs) {
    expect(o.pass).toBe(true);
    expect(o.maxRel).toBeLessThan(1e-4);
  }
  expect(r.pass).toBe(true);
}

describe('graphs of a QARepVGGBlockV2 block', () => {
  it('train form: dense Conv+BN, bare 1×1 Conv, the input itself, AveragePool (zero padding counted), Adds, then the post BN and ReLU', async () => {
    const { s } = qarep('v2');
    const model = memoryModel(s.tensors);
    const structure = buildStructure(model, { qarepvgg: 'v2' });
    const g = (await buildGraph(model, structure, { form: 'as-is' })).model.graph!;
    expect(opsOf(g, 'blocks.1')).toEqual(['Conv', 'BatchNormalization', 'Conv', 'AveragePool', 'Add', 'Add', 'Add', 'BatchNormalization', 'Relu']);
    const x = 'blocks.0';
    const one = byName(g, 'blocks.1/rbr_1x1/conv');
    expect(one.input).toEqual([x, 'blocks.1.rbr_1x1.weight']);
    const pool = byName(g, 'blocks.1/rbr_avg/pool');
    expect(pool.input).toEqual([x]);
    expect([ints(pool, 'kernel_shape'), ints(pool, 'strides'), ints(pool, 'pads'), ints(pool, 'count_include_pad')]).toEqual([[3, 3], [1, 1], [1, 1, 1, 1], 1]);
    // The identity is the block's input added as it is.
    expect(byName(g, 'blocks.1/sum2').input).toEqual(['blocks.1/sum1', x]);
    expect(byName(g, 'blocks.1/sum').input).toEqual(['blocks.1/sum2', 'blocks.1/rbr_avg/pool']);
    const post = byName(g, 'blocks.1/post_bn');
    expect(post.input).toEqual(['blocks.1/sum', 'blocks.1.bn.weight', 'blocks.1.bn.bias', 'blocks.1.bn.running_mean', 'blocks.1.bn.running_var']);
    expect(byName(g, 'blocks.1').input).toEqual(['blocks.1/post_bn']);
    // No identity, no AvgPool where in ≠ out.
    expect(opsOf(g, 'blocks.3')).toEqual(['Conv', 'BatchNormalization', 'Conv', 'Add', 'BatchNormalization', 'Relu']);
  });

  it('deploy form: one Conv with the post BN folded in, then ReLU', async () => {
    const { s } = qarep('v2');
    const model = memoryModel(s.tensors);
    const g = (await buildGraph(model, buildStructure(model, { qarepvgg: 'v2' }), { form: 'deploy' })).model.graph!;
    for (const b of STACK) expect(opsOf(g, b.name)).toEqual(['Conv', 'Relu']);
    expect(g.node.some((n) => n.opType === 'BatchNormalization')).toBe(false);
  });

  it('a deploy checkpoint as YOLOv6 leaves it (rbr_reparam + bn): its Conv, then the kept BN, then ReLU', async () => {
    const { s } = qarep('v2');
    const model = memoryModel(s.tensors);
    const plan = planDeploy(model, buildStructure(model, { qarepvgg: 'v2' }));
    const tensors: SynthTensor[] = [];
    for (const t of plan.tensors) {
      const bytes = await producedBytes(t);
      tensors.push({
        name: t.name,
        shape: [...t.shape],
        dtype: t.dtype,
        values: t.dtype === 'int64' ? Float64Array.of(0) : Float64Array.from(new Float32Array(bytes.slice().buffer)),
      });
    }
    const deploy = memoryModel(tensors);
    const g = (await buildGraph(deploy, buildStructure(deploy), { form: 'as-is' })).model.graph!;
    for (const b of STACK) expect(opsOf(g, b.name)).toEqual(['Conv', 'BatchNormalization', 'Relu']);
  });
});

describe('parity on the new families, block by block', () => {
  it('YOLOv6 QARepVGGBlock (v1), a state dict: passes', async () => {
    const file = await writeStateDict(path.join(env.dir, 'qarep_v1_sd.pth'), qarep('v1').s.tensors);
    const r = await checkParity(file, { ...base, shape: [1, 8, 16, 16] });
    expectPasses(
      r,
      STACK.map((b) => b.name),
    );
    expect(r.forms.deploy.nodes).toBe(2 * STACK.length);
    expect(r.forms.deploy.params).toBeLessThan(r.forms.train.params);
    expect(r.notes.some((n) => n.includes('QARepVGGBlock (v1)'))).toBe(true);
  }, 60_000);

  it('YOLOv6 QARepVGGBlockV2, a pickled model (class names say V2): passes, with the AvgPool in the train graph', async () => {
    const file = await writeModuleCheckpoint(path.join(env.dir, 'qarep_v2_module.pt'), qarep('v2').root);
    const r = await checkParity(file, { ...base, shape: [1, 8, 16, 16] });
    expectPasses(
      r,
      STACK.map((b) => b.name),
    );
    // 3 blocks with identity and AvgPool: Conv BN Conv AvgPool Add Add Add BN Relu; 2 without: Conv BN Conv Add BN Relu.
    expect(r.forms.train.nodes).toBe(3 * 9 + 2 * 6);
    expect(r.forms.deploy.nodes).toBe(2 * STACK.length);
  }, 60_000);

  it('YOLOv6 QARepVGGBlockV2: its train form against the deploy checkpoint RepLens writes (rbr_reparam + bn kept) passes; bn dropped, or folded twice, fails', async () => {
    const train = await writeModuleCheckpoint(path.join(env.dir, 'qarep_v2_train.pt'), qarep('v2', 52).root);
    const model = await openModelFile(train);
    let structure: ModelStructure;
    try {
      structure = buildStructure(model);
      const plan = planDeploy(model, structure);
      const write = async (name: string, tensors: OutputTensor[]) => {
        const out = path.join(env.dir, name);
        await writeAtomically(out, (sink) => writeTorchCheckpoint(sink, tensors), { overwrite: true });
        return out;
      };
      const good = await write('qarep_v2.deploy.pth', plan.tensors);
      const r = await compareModels(train, good, { ...base, shape: [1, 8, 16, 16] });
      expectPasses(
        r,
        STACK.map((b) => b.name),
      );

      // Without bn the file is not this model.
      const noBn = await write(
        'qarep_v2.nobn.pth',
        planDeploy(model, structure).tensors.filter((t) => !/\.bn\./.test(t.name)),
      );
      const r1 = await compareModels(train, noBn, { ...base, shape: [1, 8, 16, 16] });
      expect(r1.pass).toBe(false);
      expect(r1.blocks[0].maxRel).toBeGreaterThan(1e-2);
      // Nor with the BN folded into rbr_reparam as well as kept: it would be applied twice.
      const twice = planDeploy(model, structure).tensors.map((t): OutputTensor => {
        const m = /^(.*)\.rbr_reparam\.(weight|bias)$/.exec(t.name);
        if (!m) return t;
        const block = allBlocks(structure).find((b) => b.name === m[1])!;
        return {
          ...t,
          bytes: async () => {
            const f = await fuseBlock(block, async (n) => await model.tensors.find((x) => x.name === n)!.toFloat64(), { postBn: 'fold' });
            return new Uint8Array(Float32Array.from(m[2] === 'weight' ? f.weight : f.bias).buffer);
          },
        };
      });
      const r2 = await compareModels(train, await write('qarep_v2.twice.pth', twice), { ...base, shape: [1, 8, 16, 16] });
      expect(r2.pass).toBe(false);
      expect(r2.blocks[0].maxRel).toBeGreaterThan(1e-2);
    } finally {
      await model.close();
    }
  }, 60_000);

  it('YOLOv6 RepVGGBlock with YOLOv6 names: passes', async () => {
    const s = new Synth(53);
    const specs: BlockSpec[] = [
      { name: 'backbone.stem', cin: 3, cout: 8, stride: 2 },
      { name: 'backbone.ERBlock_2.0', cin: 8, cout: 16, stride: 2 },
      { name: 'backbone.ERBlock_2.1.conv1', cin: 16, cout: 16, stride: 1 },
      { name: 'backbone.ERBlock_2.1.block.0', cin: 16, cout: 16, stride: 1 },
    ];
    for (const b of specs) yolov6RepvggBlock(s, b);
    const file = await writeStateDict(path.join(env.dir, 'yolov6_rep_sd.pth'), s.tensors);
    const { structure } = { structure: buildStructure(memoryModel(s.tensors)) };
    expect(structure.family).toBe('yolov6-repvgg');
    const r = await checkParity(file, { ...base, shape: [1, 3, 16, 16] });
    expectPasses(
      r,
      specs.map((b) => b.name),
    );
  }, 60_000);

  it('timm MobileOne (depthwise and pointwise blocks, several k×k branches, SE) with its classifier: passes', async () => {
    const s = new Synth(54);
    const specs = TINY_MOBILEONE;
    for (const b of specs) timmMobileOneBlock(s, b);
    s.matrix('head.fc.weight', [10, 24]);
    s.vector('head.fc.bias', 10, -0.1, 0.1);
    const file = await writeStateDict(path.join(env.dir, 'timm_mobileone_sd.pth'), s.tensors);
    const r = await checkParity(file, { ...base, shape: [1, 3, 32, 32] });
    expect(r.topology).toBe('classifier');
    expectPasses(
      r,
      specs.map((b) => b.name),
    );
    expect(r.outputs.map((o) => o.name)).toEqual(['output']);
    expect(r.outputs[0].top1Agreement).toBe(1);
  }, 60_000);
});
